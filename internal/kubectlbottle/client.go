package kubectlbottle

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	v1 "github.com/bot-bottle/bottle-controller/api/v1alpha1"
)

// The plugin talks to two APIs: Bottles (agents.bot-bottle.dev) and their
// streaming subresources (subresources.agents.bot-bottle.dev, the exec
// API). It reads them with client-go's REST client and a scheme of its own
// types only, not client-go's scheme of every built-in type nor
// controller-runtime's client: registering those costs every run tens of
// milliseconds before its first request, and `kubectl bottle exec` is
// started once per command.
var (
	bottleScheme = newBottleScheme()
	bottleCodecs = serializer.NewCodecFactory(bottleScheme)
)

func newBottleScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		panic(err)
	}
	// Status for errors and the options types of every group-version.
	metav1.AddToGroupVersion(s, v1.SubresourceGroupVersion)
	metav1.AddToGroupVersion(s, metav1.SchemeGroupVersion)
	return s
}

// restClientFor is a REST client of gv (under /apis) with the plugin's
// codecs.
func restClientFor(cfg *rest.Config, gv *schema.GroupVersion) (*rest.RESTClient, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = gv
	c.APIPath = "/apis"
	c.NegotiatedSerializer = bottleCodecs.WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(c)
}

// bottleClient reads and patches Bottles.
type bottleClient struct{ rc *rest.RESTClient }

func newBottleClient(cfg *rest.Config) (*bottleClient, error) {
	gv := v1.GroupVersion
	rc, err := restClientFor(cfg, &gv)
	if err != nil {
		return nil, err
	}
	return &bottleClient{rc: rc}, nil
}

func (c *bottleClient) Get(ctx context.Context, key types.NamespacedName) (*v1.Bottle, error) {
	b := &v1.Bottle{}
	err := c.rc.Get().Namespace(key.Namespace).Resource(v1.BottleResource).Name(key.Name).Do(ctx).Into(b)
	return b, err
}

func (c *bottleClient) List(ctx context.Context, namespace string, opts metav1.ListOptions) (*v1.BottleList, error) {
	list := &v1.BottleList{}
	err := c.rc.Get().Namespace(namespace).Resource(v1.BottleResource).
		VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(list)
	return list, err
}

func (c *bottleClient) Watch(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.rc.Get().Namespace(namespace).Resource(v1.BottleResource).
		VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}

// Patch applies a patch of type pt to the Bottle.
func (c *bottleClient) Patch(ctx context.Context, key types.NamespacedName, pt types.PatchType, data []byte) (*v1.Bottle, error) {
	b := &v1.Bottle{}
	err := c.rc.Patch(pt).Namespace(key.Namespace).Resource(v1.BottleResource).Name(key.Name).
		Body(data).Do(ctx).Into(b)
	return b, err
}
