package v1alpha1

// Size budget of a Bottle. etcd refuses to store an object larger than
// 1.5 MiB (its --max-request-bytes default), and a Bottle stores user
// content in its spec and guest output in its status. The budget below keeps
// spec + status + metadata under that limit in the worst case, counting JSON
// escaping (a '<' or a control character is stored as 6 bytes, \u003c):
//
//	spec content   MaxContentChars × 6          768 KiB
//	paths          MaxPathChars × 6, ×4          192 KiB (spec, status.files,
//	               and the managedFields keys of both)
//	status tails   32 steps × 2 × MaxTailJSONBytes 256 KiB
//	egress         MaxEgressRefusals × 300 × 6    29 KiB (guest-chosen names)
//	the rest       names, refs, hosts, env names, ≈ 200 KiB
//	               conditions, per-step records
//
// budget_test.go ("Bottle size budget") writes such a Bottle and status to
// a real API server and etcd: 1,507,298 bytes stored. A templated Bottle
// records up to 32 inherited steps in status.template but may not set
// image, resources or network: 1,477,041 bytes in the same test. The CEL rules on BottleSpec
// enforce the two spec totals; the agent enforces the tail budget.
const (
	// MaxContentChars bounds the characters of prompt.inline, files[].inline,
	// provision[].script and env[].value together: room for the largest
	// script plus the largest inline file. Larger content belongs in a
	// ConfigMap or Secret.
	MaxContentChars = 131072

	// MaxPathChars bounds the characters of promptPath and files[].path
	// together (an average of 126 per file at 64 files).
	MaxPathChars = 8192

	// MaxTailJSONBytes bounds each of a step's stdout and stderr tails in
	// status, measured as JSON-escaped bytes (without the quotes).
	MaxTailJSONBytes = 4096

	// EtcdMaxObjectBytes is etcd's default request size limit.
	EtcdMaxObjectBytes = 1536 << 10
)
