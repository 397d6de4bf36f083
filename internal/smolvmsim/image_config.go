package smolvmsim

import (
	"encoding/json"
	"os"
	"strings"
)

// ImagesEnv declares what the simulator's images carry in their OCI config,
// which smolvm applies to every exec in an image's machine, as JSON:
// {"node:22-user": {"user": "node", "env": ["A=1"], "workdir": "/app"}}.
// user: exec runs as the image's USER (smolvm:src/cli/vm_common.rs:349,
// src/cli/machine.rs:2754,2765,2778,2790), resolved in the image's
// /etc/passwd (crates/smolvm-agent/src/oci.rs:132-177). env: the image's
// ENV, under everything else (vm_common.rs:328-372: image ENV < create -e <
// --secret-env < exec -e). workdir: the image's WORKDIR, used when neither
// exec nor create gave -w (vm_common.rs:345-347). Images not listed have no
// USER (root), ENV or WORKDIR.
const ImagesEnv = "SMOLVM_SIM_IMAGES"

// imageConfig is one image's declared config.
type imageConfig struct {
	User    string   `json:"user"`
	Env     []string `json:"env"`
	Workdir string   `json:"workdir"`
}

// imageConfigOf is image's declared config (zero when none, or when the
// knob does not parse).
func imageConfigOf(image *string) imageConfig {
	if image == nil {
		return imageConfig{}
	}
	var all map[string]imageConfig
	if err := json.Unmarshal([]byte(os.Getenv(ImagesEnv)), &all); err != nil {
		return imageConfig{}
	}
	c := all[*image]
	if c.User == "root" || c.User == "0" {
		c.User = ""
	}
	return c
}

// asImageUser runs command as the image's USER: through the simulator's
// own runuser, which really switches to it, as smolvm's agent does before it
// runs the command.
func asImageUser(r *record, command []string) []string {
	user := imageConfigOf(r.Image).User
	if user == "" {
		return command
	}
	return append([]string{guestRunuser, "-u", user, "--"}, command...)
}

// runuserRefused is util-linux runuser's answer to a caller that is not
// root (login-utils/su-common.c): it switches users only for root, even to
// the caller's own user. In the simulator's non-root mode the sandbox is
// already its target user and runuser only sets the environment, so the
// check applies only when the sandbox shares the host's user ids.
func runuserRefused() bool {
	if os.Geteuid() == 0 {
		return false
	}
	m, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && strings.Join(strings.Fields(string(m)), " ") == "0 0 4294967295"
}
