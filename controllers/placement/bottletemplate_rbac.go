package placement

// The cluster controller reads BottleTemplates (where their goldens and
// free slots are, for placing templated Bottles) and applies their status
// summary (observedGeneration, conditions, goldenNodes, freeSlots).
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottletemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=agents.bot-bottle.dev,resources=bottletemplates/status,verbs=patch
