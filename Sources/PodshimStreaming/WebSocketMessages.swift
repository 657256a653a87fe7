import NIOCore
import NIOWebSocket

/// Joins a WebSocket message's data frames (a first frame, then continuations up to FIN), for
/// both WebSocket sessions; a message may not grow past 1 MiB.
struct WebSocketMessageAssembler {
    enum Outcome {
        /// A whole message.
        case message(ByteBuffer)
        /// More frames to come.
        case incomplete
        /// A continuation without a first frame, or a message over the limit: close with this code.
        case failure(WebSocketErrorCode)
    }

    private var partial: ByteBuffer?

    /// Takes one data frame (binary, text or continuation).
    mutating func add(_ frame: WebSocketFrame) -> Outcome {
        var data = frame.unmaskedData
        if frame.opcode == .continuation {
            guard var message = partial else { return .failure(.protocolError) }
            message.writeBuffer(&data)
            partial = message
        } else {
            partial = data
        }
        guard frame.fin, let message = partial else {
            return (partial?.readableBytes ?? 0) > 1 << 20 ? .failure(.messageTooLarge) : .incomplete
        }
        partial = nil
        return .message(message)
    }
}
