package smolvmsim

import (
	"os"
	"strings"
)

// ImageUsersEnv declares the USER of images, as an image's config does:
// "node:22-user=node,other:1=node". smolvm runs every exec of an image's
// machine as that user (smolvm:src/cli/vm_common.rs:349,
// src/cli/machine.rs:2754,2765,2778,2790), resolved in the image's
// /etc/passwd (crates/smolvm-agent/src/oci.rs:132-177). Images not listed
// run as root, as an image without USER does.
const ImageUsersEnv = "SMOLVM_SIM_IMAGE_USERS"

// imageUser is the declared USER of image ("" for root).
func imageUser(image *string) string {
	if image == nil {
		return ""
	}
	for _, item := range strings.Split(os.Getenv(ImageUsersEnv), ",") {
		img, user, ok := strings.Cut(strings.TrimSpace(item), "=")
		if ok && img == *image && user != "root" && user != "0" {
			return user
		}
	}
	return ""
}

// asImageUser runs command as the image's USER: through the simulator's
// own runuser, which really switches to it, as smolvm's agent does before it
// runs the command.
func asImageUser(r *record, command []string) []string {
	user := imageUser(r.Image)
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
