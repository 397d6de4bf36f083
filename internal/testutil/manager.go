package testutil

import (
	"github.com/go-logr/logr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// ManagerOptions turns an agent's manager options (agent.ManagerOptions)
// into a test's: no metrics or probe listeners, the test's logger, and
// controller names that may repeat because a suite starts many managers in
// one process.
func ManagerOptions(base ctrl.Options, logger logr.Logger) ctrl.Options {
	base.Logger = logger
	base.Metrics = metricsserver.Options{BindAddress: "0"}
	base.HealthProbeBindAddress = "0"
	base.Controller = config.Controller{SkipNameValidation: ptr.To(true)}
	return base
}
