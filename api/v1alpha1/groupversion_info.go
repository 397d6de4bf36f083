// Package v1alpha1 contains the v1alpha1 API of the agents.bot-bottle.dev group.
// +kubebuilder:object:generate=true
// +groupName=agents.bot-bottle.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the Bottle API's group.
const GroupName = "agents.bot-bottle.dev"

var (
	// GroupVersion is the group and version of the Bottle API.
	GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the API's types, and the meta/v1 types every
// group-version needs (ListOptions, DeleteOptions, ...), with scheme.
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &Bottle{}, &BottleList{}, &BottleTemplate{}, &BottleTemplateList{}, &BottleRun{}, &BottleRunList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
