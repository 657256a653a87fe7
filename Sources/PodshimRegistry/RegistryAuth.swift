import Foundation

/// Credentials for one registry, from the CRI's AuthConfig, podshim's registry configuration or a
/// Docker config.json. Never printed: `description` hides every secret.
public struct RegistryCredentials: Equatable, Sendable, CustomStringConvertible {
    public var username: String
    public var password: String
    /// An OAuth2 refresh token (Docker's `identitytoken`), traded at the token realm.
    public var identityToken: String
    /// A bearer token to send as it is.
    public var registryToken: String

    public init(username: String = "", password: String = "", identityToken: String = "", registryToken: String = "") {
        self.username = username
        self.password = password
        self.identityToken = identityToken
        self.registryToken = registryToken
    }

    /// From the CRI AuthConfig fields, as containerd's ParseAuth reads them: username and password,
    /// else the identity token, else `auth` (base64 `user:pass`, split at the first colon).
    /// Nil when nothing usable is there.
    public static func fromAuthConfig(username: String, password: String, auth: String, identityToken: String,
                                      registryToken: String) throws(RegistryError) -> RegistryCredentials? {
        if !username.isEmpty { return RegistryCredentials(username: username, password: password) }
        if !identityToken.isEmpty { return RegistryCredentials(identityToken: identityToken) }
        if !auth.isEmpty {
            guard let data = Data(base64Encoded: auth), let decoded = String(data: data, encoding: .utf8),
                  let colon = decoded.firstIndex(of: ":") else {
                throw .invalidReference("auth", "AuthConfig.auth is not base64 of user:password")
            }
            let user = String(decoded[..<colon])
            let pass = String(decoded[decoded.index(after: colon)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\0"))
            return RegistryCredentials(username: user, password: pass)
        }
        if !registryToken.isEmpty { return RegistryCredentials(registryToken: registryToken) }
        return nil
    }

    var basicHeader: String? {
        guard !username.isEmpty else { return nil }
        return "Basic " + Data((username + ":" + password).utf8).base64EncodedString()
    }

    public var description: String {
        if !username.isEmpty { return "credentials of user \(username)" }
        if !identityToken.isEmpty { return "an identity token" }
        if !registryToken.isEmpty { return "a registry token" }
        return "no credentials"
    }
}

/// A `WWW-Authenticate` challenge: `Basic realm="…"` or
/// `Bearer realm="…",service="…",scope="…",error="insufficient_scope"`.
struct AuthChallenge: Equatable, Sendable {
    enum Scheme: String, Sendable { case basic, bearer }
    var scheme: Scheme
    var parameters: [String: String]

    var realm: String? { parameters["realm"] }
    var service: String? { parameters["service"] }
    var scope: String? { parameters["scope"] }
    var error: String? { parameters["error"] }

    /// The challenges of a header value; unknown schemes are skipped. Parameters are
    /// `key=value` or `key="quoted, value"` (backslash escapes), separated by commas.
    static func parse(_ header: String) -> [AuthChallenge] {
        var challenges: [AuthChallenge] = []
        let bytes = Array(header.utf8)
        var index = 0
        func skipSpaces() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x2C { index += 1 } }
        func token() -> String {
            let start = index
            while index < bytes.count, bytes[index] != 0x20, bytes[index] != 0x3D, bytes[index] != 0x2C, bytes[index] != 0x09 { index += 1 }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
        while index < bytes.count {
            skipSpaces()
            let schemeName = token().lowercased()
            guard !schemeName.isEmpty else { break }
            var parameters: [String: String] = [:]
            while index < bytes.count {
                while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
                let save = index
                let key = token().lowercased()
                while index < bytes.count, bytes[index] == 0x20 { index += 1 }
                guard index < bytes.count, bytes[index] == 0x3D, !key.isEmpty else { index = save; break }
                index += 1
                var value: [UInt8] = []
                if index < bytes.count, bytes[index] == 0x22 {
                    index += 1
                    while index < bytes.count, bytes[index] != 0x22 {
                        if bytes[index] == 0x5C, index + 1 < bytes.count { index += 1 }
                        value.append(bytes[index])
                        index += 1
                    }
                    index += 1
                } else {
                    while index < bytes.count, bytes[index] != 0x2C, bytes[index] != 0x20 { value.append(bytes[index]); index += 1 }
                }
                parameters[key] = String(decoding: value, as: UTF8.self)
                while index < bytes.count, bytes[index] == 0x20 { index += 1 }
                if index < bytes.count, bytes[index] == 0x2C { index += 1 } else { break }
            }
            if let scheme = Scheme(rawValue: schemeName) { challenges.append(AuthChallenge(scheme: scheme, parameters: parameters)) }
        }
        return challenges
    }
}

/// A token endpoint's answer (distribution token.md): `token` and/or `access_token`.
struct TokenResponse: Decodable {
    var token: String?
    var accessToken: String?
    var expiresIn: Int?
    var refreshToken: String?

    enum CodingKeys: String, CodingKey {
        case token, accessToken = "access_token", expiresIn = "expires_in", refreshToken = "refresh_token"
    }

    /// `access_token` preferred (as containerd does), else `token`.
    var bearer: String? {
        if let accessToken, !accessToken.isEmpty { return accessToken }
        if let token, !token.isEmpty { return token }
        return nil
    }

    /// At least 60 s, as containers/image floors it; 60 s when absent.
    var lifetime: Int { max(60, expiresIn ?? 60) }
}
