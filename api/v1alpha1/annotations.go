package v1alpha1

// Retry annotations. Setting AnnotationRetry to a value the agent has not
// handled yet (status.lastHandledRetry) re-runs the failed, timed-out or
// cancelled step and every step after it; with AnnotationRetryStep set too,
// it re-runs from that step even if it succeeded. Any new value works, so
// git can carry it (a date, a commit id); `kubectl bottle retry` sets both.
const (
	AnnotationRetry     = "agents.bot-bottle.dev/retry"
	AnnotationRetryStep = "agents.bot-bottle.dev/retry-step"
)
