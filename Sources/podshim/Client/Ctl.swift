import ArgumentParser

/// `podshim ctl …`: a command-line client for people, talking CRI to `podshim serve`.
struct Ctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Talk to a running `podshim serve` over its socket, like crictl.",
        discussion: """
            Every subcommand connects to the daemon's Unix socket (--socket, else $PODSHIM_SOCKET, else /run/podshim/podshim.sock), which usually only root may use.

            Ids may be shortened to any unique prefix, as shown in the 13-character id columns of `pods` and `ps`.

            Tables are for reading; `-o json` gives the daemon's answer in the protobuf JSON mapping (fields at their default value, such as a zero exit code or the first enum value, are left out).

            On an error the daemon's status code and message are printed and the exit status is 1; `exec` exits with its command's status.
            """,
        subcommands: [
            CtlVersion.self, CtlInfo.self,
            CtlPods.self, CtlInspectPod.self, CtlRunPod.self, CtlStopPods.self, CtlRemovePods.self,
            CtlContainers.self, CtlInspectContainer.self, CtlCreate.self, CtlStart.self, CtlStop.self, CtlRemove.self,
            CtlExec.self, CtlAttach.self, CtlPortForward.self, CtlLogs.self, CtlEvents.self,
            CtlImages.self, CtlPull.self, CtlRemoveImages.self, CtlImageFsInfo.self,
            CtlStats.self,
            CtlApply.self, CtlDescribe.self, CtlManifestPods.self, CtlTerminate.self, CtlDelete.self,
        ]
    )
}
