import Foundation
import GRPCCore
import PodshimCRI
import PodshimImages
import PodshimRegistry
import PodshimRuntime
import PodshimSystem

/// `runtime.v1.ImageService` over the image store: PullImage from registries (``ImagePuller``),
/// images imported by hand served as they are.
struct ImageServiceProvider: Runtime_V1_ImageService.SimpleServiceProtocol {
    let store: ImageStore
    let puller: ImagePuller
    /// Knows the containers whose layers garbage collection must keep.
    let manager: SandboxManager
    /// Where containers' writable layers live (`<root>/pods`), reported as the container filesystem.
    var containerRoot: String?
    /// ImageFsInfo's last measurement (at most 10 s old; a pull or a removal measures again).
    let usage = FilesystemUsageCache()

    static func image(_ record: ImageRecord) -> Runtime_V1_Image {
        var image = Runtime_V1_Image()
        image.id = record.id
        // As containerd reports them: docker.io/library/busybox:latest, not the stored busybox:latest.
        image.repoTags = record.repoTags.map(Self.fullyQualified)
        image.repoDigests = record.repoDigests.map(Self.fullyQualified)
        image.size = record.size
        let defaults = ImageDefaults(record.config)
        if let uid = defaults.numericUser {
            image.uid.value = uid
        } else if let user = defaults.user, let name = user.split(separator: ":").first, !name.isEmpty {
            image.username = String(name)  // `www-data:www-data` → `www-data`, as containerd reports it
        }
        image.spec.image = record.id
        return image
    }

    /// `busybox:1.36` → `docker.io/library/busybox:1.36`; references with a registry stay as they are.
    static func fullyQualified(_ reference: String) -> String {
        guard let parsed = try? RegistryReference(parsing: reference) else { return reference }  // kept as stored
        if reference.contains("@") { return parsed.name + "@" + (parsed.digest ?? "") }
        return parsed.description
    }

    func listImages(request: Runtime_V1_ListImagesRequest, context: ServerContext) async throws -> Runtime_V1_ListImagesResponse {
        let store = self.store
        let wanted = request.hasFilter ? request.filter.image.image : ""
        var response = Runtime_V1_ListImagesResponse()
        response.images = await offload {
            if !wanted.isEmpty { return store.status(wanted).map { [ImageServiceProvider.image($0)] } ?? [] }
            return store.list().map(ImageServiceProvider.image)
        }
        return response
    }

    func imageStatus(request: Runtime_V1_ImageStatusRequest, context: ServerContext) async throws -> Runtime_V1_ImageStatusResponse {
        let reference = request.image.image
        if reference.isEmpty { throw CRIError.invalidArgument("image.image", "required") }
        let store = self.store
        var response = Runtime_V1_ImageStatusResponse()
        // An unknown image is not an error: the response simply has no image (the kubelet then pulls).
        if let record = await offload({ store.status(reference) }) {
            response.image = Self.image(record)
            if request.verbose { response.info["rootfs"] = record.rootfs }
        }
        return response
    }

    func pullImage(request: Runtime_V1_PullImageRequest, context: ServerContext) async throws -> Runtime_V1_PullImageResponse {
        let reference = request.image.image
        if reference.isEmpty { throw CRIError.invalidArgument("image.image", "required") }
        if ImageStore.isHostPath(reference) {
            throw CRIError.invalidArgument("image.image", ImageStore.ResolveError.hostPath(reference).description)
        }
        let store = self.store
        // An image imported by hand (no digest from this reference's registry) is served as it is:
        // it has no registry to come from.
        if let local = await offload({ store.status(reference) }), ImagePuller.isLocal(local, reference: reference) {
            var response = Runtime_V1_PullImageResponse()
            response.imageRef = local.id
            return response
        }
        var credentials: RegistryCredentials?
        do {
            credentials = request.hasAuth ? try RegistryCredentials.fromAuthConfig(
                username: request.auth.username, password: request.auth.password, auth: request.auth.auth,
                identityToken: request.auth.identityToken, registryToken: request.auth.registryToken) : nil
        } catch {
            throw PodshimError(.invalidArgument, subject: "auth", message: error.description)
        }
        // Credentials for another registry are not for this one (containerd's ParseAuth skips them too).
        if request.hasAuth, !request.auth.serverAddress.isEmpty, let parsed = try? RegistryReference(parsing: reference),
           !Self.sameRegistry(request.auth.serverAddress, parsed) {
            credentials = nil
        }
        let record: ImageRecord
        let started = MonotonicInstant.now()
        do {
            record = try await puller.pull(reference, credentials: credentials)
        } catch {
            // The error names the reference and host, never a credential.
            manager.logger.warning("pull \(reference) failed: \(error)")
            throw error.podshimError
        }
        let seconds = MonotonicInstant.now().milliseconds(since: started) / 1000
        manager.logger.notice("pulled \(reference): \(record.id) (\(record.repoDigests.last ?? "no digest"), \(record.size) bytes) in \(String(format: "%.2f", seconds)) s")
        usage.invalidate()
        var response = Runtime_V1_PullImageResponse()
        response.imageRef = record.id
        return response
    }

    /// `server_address` (`https://index.docker.io/v1/`, `registry.example:5000`) names the registry of `reference`.
    static func sameRegistry(_ serverAddress: String, _ reference: RegistryReference) -> Bool {
        var host = serverAddress
        if let range = host.range(of: "://") { host = String(host[range.upperBound...]) }
        host = String(host.split(separator: "/").first ?? "")
        if ["index.docker.io", "registry-1.docker.io", "docker.io"].contains(host) { host = RegistryReference.defaultRegistry }
        return host == reference.registry || host == reference.apiHost
    }

    func removeImage(request: Runtime_V1_RemoveImageRequest, context: ServerContext) async throws -> Runtime_V1_RemoveImageResponse {
        let reference = request.image.image
        if reference.isEmpty { throw CRIError.invalidArgument("image.image", "required") }
        if ImageStore.isHostPath(reference) {
            throw CRIError.invalidArgument("image.image", ImageStore.ResolveError.hostPath(reference).description)
        }
        let store = self.store
        let manager = self.manager
        defer { usage.invalidate() } // also after a failure, which may have removed part of it
        do {
            try await offload { () throws in
                try store.remove(reference)
                // Layers no other image and no container uses are freed now.
                manager.reconcileLayerLeases()
                try store.collectGarbage()
            }
        } catch let error as ImageRemoveError {
            throw CRIError.internal("remove image \(reference): \(error)")
        }
        return Runtime_V1_RemoveImageResponse()
    }

    func imageFsInfo(request: Runtime_V1_ImageFsInfoRequest, context: ServerContext) async throws -> Runtime_V1_ImageFsInfoResponse {
        await usage.response { await measureFilesystems() }
    }

    /// Walks the image store and the containers' writable layers (off the event loop).
    private func measureFilesystems() async -> Runtime_V1_ImageFsInfoResponse {
        let store = self.store
        let usage = await offload { store.usage() }
        var filesystem = Runtime_V1_FilesystemUsage()
        filesystem.timestamp = nowNanoseconds()
        filesystem.fsID.mountpoint = usage.mountpoint
        filesystem.usedBytes.value = usage.bytes
        filesystem.inodesUsed.value = usage.inodes
        var response = Runtime_V1_ImageFsInfoResponse()
        response.imageFilesystems = [filesystem]
        if let containerRoot {
            let layers = await offload { FileSystem.usage(of: containerRoot) }
            var containers = Runtime_V1_FilesystemUsage()
            containers.timestamp = nowNanoseconds()
            containers.fsID.mountpoint = containerRoot
            containers.usedBytes.value = layers?.bytes ?? 0
            containers.inodesUsed.value = layers?.inodes ?? 0
            response.containerFilesystems = [containers]
        }
        return response
    }

    func streamImages(request: Runtime_V1_StreamImagesRequest, response: RPCWriter<Runtime_V1_StreamImagesResponse>, context: ServerContext) async throws {
        throw CRIError.unimplemented("StreamImages")
    }
}
