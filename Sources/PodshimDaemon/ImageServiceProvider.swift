import Foundation
import GRPCCore
import PodshimCRI
import PodshimImages
import PodshimRuntime
import PodshimSystem

/// `runtime.v1.ImageService` over the local image store: no registry is ever contacted.
struct ImageServiceProvider: Runtime_V1_ImageService.SimpleServiceProtocol {
    let store: ImageStore
    /// Where containers' writable layers live (`<root>/pods`), reported as the container filesystem.
    var containerRoot: String?

    static func image(_ record: ImageRecord) -> Runtime_V1_Image {
        var image = Runtime_V1_Image()
        image.id = record.id
        image.repoTags = record.repoTags
        image.repoDigests = record.repoDigests
        image.size = record.size
        let defaults = ImageDefaults(record.config)
        if let uid = defaults.numericUser {
            image.uid.value = uid
        } else if let user = defaults.user {
            image.username = user
        }
        image.spec.image = record.id
        return image
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
        let record: ImageRecord
        do {
            record = try await offload { () throws -> ImageRecord in try store.pull(reference) }
        } catch let error as ImagePullError {
            if case .remoteNotSupported = error {
                throw PodshimError(.notFound, subject: "image.image", message: "\(error)")
            }
            throw PodshimError(.internal, operation: "pull", subject: reference, message: "\(error)")
        }
        var response = Runtime_V1_PullImageResponse()
        response.imageRef = record.id
        return response
    }

    func removeImage(request: Runtime_V1_RemoveImageRequest, context: ServerContext) async throws -> Runtime_V1_RemoveImageResponse {
        let reference = request.image.image
        if reference.isEmpty { throw CRIError.invalidArgument("image.image", "required") }
        if ImageStore.isHostPath(reference) {
            throw CRIError.invalidArgument("image.image", ImageStore.ResolveError.hostPath(reference).description)
        }
        let store = self.store
        do {
            try await offload { () throws in try store.remove(reference) }
        } catch let error as ImageRemoveError {
            throw CRIError.internal("remove image \(reference): \(error)")
        }
        return Runtime_V1_RemoveImageResponse()
    }

    func imageFsInfo(request: Runtime_V1_ImageFsInfoRequest, context: ServerContext) async throws -> Runtime_V1_ImageFsInfoResponse {
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
