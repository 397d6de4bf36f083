package v1alpha1

// MachineSpec is a machine and its provisioning: what a BottleTemplate
// describes for its golden machine, and what a Bottle describes for its own
// (inline in both specs, so the JSON is flat). One type, so that a new
// machine field is one edit for both kinds.
//
// On a Bottle with spec.templateRef the template owns image, resources and
// network (the Bottle's CEL rules reject them there), and the Bottle's files,
// env, prompt and steps run in its clone after the fork.
// +kubebuilder:validation:XValidation:rule="!has(self.prompt) || has(self.promptPath)",message="prompt requires promptPath: set spec.promptPath to the absolute guest path the prompt is written to",fieldPath=".prompt"
// +kubebuilder:validation:XValidation:rule="!has(self.prompt) || !has(self.promptPath) || !has(self.files) || self.files.all(f, f.path != self.promptPath)",message="promptPath must differ from every files[].path when prompt is set: both would write the same file (drop prompt to use that file as the prompt)",fieldPath=".promptPath"
// +kubebuilder:validation:XValidation:rule="(has(self.prompt) && has(self.prompt.inline) ? size(self.prompt.inline) : 0) + (has(self.files) ? self.files.map(f, has(f.inline) ? size(f.inline) : 0).sum() : 0) + (has(self.provision) ? self.provision.map(p, size(p.script)).sum() : 0) + (has(self.env) ? self.env.map(e, has(e.value) ? size(e.value) : 0).sum() : 0) <= 131072",message="prompt.inline, files[].inline, provision[].script and env[].value may hold at most 131072 characters in total, so that the object and its status fit in etcd; move large content to a ConfigMap or Secret (configMapKeyRef, secretKeyRef, valueFrom)"
// +kubebuilder:validation:XValidation:rule="!has(self.files) || self.files.all(f, self.files.all(g, !g.path.startsWith(f.path) || size(g.path) == size(f.path) || g.path.charAt(size(f.path)) != '/'))",message="a files[].path must not be a directory of another files[].path: one path cannot be both a file and a directory",fieldPath=".files"
// +kubebuilder:validation:XValidation:rule="!has(self.prompt) || !has(self.promptPath) || !has(self.files) || self.files.all(f, !self.promptPath.startsWith(f.path + '/') && !f.path.startsWith(self.promptPath + '/'))",message="promptPath and a files[].path must not be one the other's directory: one path cannot be both a file and a directory",fieldPath=".promptPath"
// +kubebuilder:validation:XValidation:rule="(has(self.promptPath) ? size(self.promptPath) : 0) + (has(self.files) ? self.files.map(f, size(f.path)).sum() : 0) <= 8192",message="promptPath and files[].path may hold at most 8192 characters in total, so that the object and its status fit in etcd"
type MachineSpec struct {
	// Image is the OCI image the machine boots, e.g. node:22-bookworm.
	// Required, except on a Bottle with spec.templateRef, whose image is its
	// template's.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.matches('\\\\s')",message="image must be an OCI reference without whitespace"
	// smolvm reads these forms as files on the node, not registry references
	// (smolvm:src/data/image_source.rs:49-82): a VM's root filesystem must
	// never come from the node.
	// +kubebuilder:validation:XValidation:rule="!(self == '-' || self.startsWith('/') || self.startsWith('./') || self.startsWith('../') || self.endsWith('.tar') || self.endsWith('.tar.gz') || self.endsWith('.tgz'))",message="image must be a registry reference: smolvm reads '-', '/...', './...', '../...' and names ending in .tar, .tar.gz or .tgz as files on the node"
	Image string `json:"image,omitempty"`

	// ExecUser is the guest user that provisioning steps and sessions run as.
	// +optional
	// +kubebuilder:default=node
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z_][a-z0-9_-]{0,31}$')",message="execUser must be a POSIX user name matching ^[a-z_][a-z0-9_-]{0,31}$"
	ExecUser string `json:"execUser,omitempty"`

	// PromptPath is the absolute guest path of the agent's system prompt file,
	// passed to claude as --append-system-prompt-file.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="promptPath must be an absolute path starting with '/'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)\\\\.\\\\.(/|$)')",message="promptPath must not contain a '..' segment"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\x00-\\\\x1f\\\\x7f]')",message="promptPath must not contain control characters"
	// +kubebuilder:validation:XValidation:rule="!self.contains('//') && !self.contains('/./') && !self.endsWith('/.') && !self.endsWith('/')",message="promptPath must be canonical: no '//', no '.' segment, no trailing '/'"
	PromptPath string `json:"promptPath,omitempty"`

	// Prompt is the content written to PromptPath. Requires PromptPath.
	// +optional
	Prompt *ContentSource `json:"prompt,omitempty"`

	// Resources sizes the machine. Left out, the machine gets 2 CPUs and
	// 4096 MiB (Resources.OrDefault): the API server does not fill it in,
	// so that a templated Bottle, which must not set resources, can be told
	// from one that does.
	// +optional
	Resources Resources `json:"resources,omitzero"`

	// Network is the machine's egress allowlist. Both lists empty means the
	// machine has no network at all.
	// +optional
	Network Network `json:"network,omitzero"`

	// Env is the environment of every provisioning step, of every session
	// (exec, attach, cp) and of every BottleRun (whose own spec.env goes on
	// top).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []EnvVar `json:"env,omitempty"`

	// Files are copied into the guest before provisioning.
	// +optional
	// +listType=map
	// +listMapKey=path
	// +kubebuilder:validation:MaxItems=64
	Files []File `json:"files,omitempty"`

	// Provision is the ordered list of scripts run once the files are in place.
	// A completed step is not run again unless it, or a step before it, changes.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Provision []ProvisionStep `json:"provision,omitempty"`
}

// Resources' values when a spec leaves resources out. The CRD's default
// markers on Resources' fields spell the same numbers.
const (
	DefaultCPUs      = 2
	DefaultMemoryMiB = 4096
)

// OrDefault is r with each unset field at its default: what a machine of
// this spec gets.
func (r Resources) OrDefault() Resources {
	if r.CPUs == 0 {
		r.CPUs = DefaultCPUs
	}
	if r.MemoryMiB == 0 {
		r.MemoryMiB = DefaultMemoryMiB
	}
	return r
}
