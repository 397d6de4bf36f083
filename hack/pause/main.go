// Command pause is the sandbox ("pause") container of the node that
// hack/node-up.sh runs, which pulls no image: like registry.k8s.io/pause it
// sleeps until SIGTERM or SIGINT and exits 0. hack/node-up.sh packs it with
// hack/image (-pkg ./hack/pause) and imports it under the sandbox image's name
// and under registry.k8s.io/pause:3.10, the reservation Pods' image
// (--pause-image in config/manager/cluster.yaml).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}
