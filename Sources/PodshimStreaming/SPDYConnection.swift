import NIOCore
import PodshimSPDY

/// The SPDY side the exec and port-forward sessions share: the connection's one decoder and one
/// encoder (each direction has its header compression state), and what a protocol error costs.
final class SPDYConnection {
    private let decoder = SPDYFrameDecoder()
    private let encoder = SPDYFrameEncoder()

    /// Decodes what arrived and hands each frame to `handle`, then flushes. A protocol error on a
    /// stream the session does not know (`isKnown` false) resets that stream; any other ends the
    /// session: GOAWAY (PROTOCOL_ERROR, naming `lastGood`), flushed, then the close (a close drops
    /// what is not flushed yet).
    func read(_ buffer: ByteBuffer, context: ChannelHandlerContext, isKnown: (UInt32) -> Bool,
              lastGood: () -> UInt32, handle: (SPDYFrame) -> Void) {
        decoder.feed(buffer.readableBytesView)
        do {
            while let frame = try decoder.next() { handle(frame) }
        } catch {
            if let stream = error.stream, !isKnown(stream) {
                write(.rstStream(streamID: stream, status: .protocolError), context: context)
            } else {
                write(.goAway(lastGoodStreamID: lastGood(), status: 1), context: context)
                let channel = context.channel
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0)))
                    .whenComplete { _ in channel.close(promise: nil) }
            }
        }
        context.flush()
    }

    /// Writes `frame` (not flushed).
    func write(_ frame: SPDYFrame, context: ChannelHandlerContext) {
        context.write(NIOAny(context.channel.allocator.buffer(bytes: encoder.encode(frame))), promise: nil)
    }
}
