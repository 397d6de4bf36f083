//go:build tools

// Package tools pins the control-plane binaries the test harness builds from
// source: kube-apiserver, kube-scheduler and kubectl at v1.37.1, etcd at v3.7.0. The module is
// nested so its very large dependency graph never leaks into the controller's.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
