// Command testenv is a multi-call binary holding the Kubernetes control plane
// the project's tests, benchmarks and demo run against: embedded etcd,
// kube-apiserver, kube-controller-manager and kubectl, all built from the
// official Go packages at the version pinned in go.mod.
//
// It dispatches on its first argument, or on the name it was invoked by, so
// a symlink named kubectl behaves as kubectl:
//
//	testenv etcd --data-dir DIR --client-port 2379 --peer-port 2380
//	testenv kube-apiserver [apiserver flags]
//	testenv kube-controller-manager [controller-manager flags]
//	testenv kubectl [kubectl args]
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "testenv" || name == "testenv.exe" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: testenv etcd|kube-apiserver|kube-controller-manager|kubectl [flags]")
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	os.Args = append([]string{name}, args...)
	switch name {
	case "etcd":
		os.Exit(runEtcd(args))
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kubectl":
		os.Exit(cli.Run(kubectlcmd.NewDefaultKubectlCommand()))
	default:
		fmt.Fprintf(os.Stderr, "testenv: unknown component %q\n", name)
		os.Exit(2)
	}
}
