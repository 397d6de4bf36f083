// Package v1alpha1 contains the v1alpha1 API of the agents.bot-bottle.dev group.
// +kubebuilder:object:generate=true
// +groupName=agents.bot-bottle.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the Bottle API.
	GroupVersion = schema.GroupVersion{Group: "agents.bot-bottle.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
