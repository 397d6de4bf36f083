package agent

// The agent provisions a golden machine of each BottleTemplate its node
// keeps, and forks templated Bottles from it: it reads templates and
// applies its own node's entry of their status (never their spec).
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottletemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottletemplates/status,verbs=patch
