// kubecheck asks the Kubernetes libraries themselves (at the release the cluster runs) about what this program
// renders, so the tests check against the real rules rather than a copy of them:
//
//	kubecheck pod-security LEVEL < pods.json   Pod Security Standards, evaluated by k8s.io/pod-security-admission
//	                                           (what the API server's PodSecurity admission runs). pods.json is a
//	                                           JSON list of {"name", "metadata", "spec"}. Prints "name: allowed" or
//	                                           "name: forbidden: reason (detail); ..." per pod.
//	kubecheck kubelet-config < config          strict decoding into k8s.io/kubelet KubeletConfiguration v1beta1,
//	                                           and its TLS cipher suites resolved as the kubelet resolves them
//	kubecheck kube-proxy-config < config       strict decoding into k8s.io/kube-proxy KubeProxyConfiguration v1alpha1
//
// Strict decoding refuses any field the type does not have. Exit status 1 on a finding, 2 on a usage error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	cliflag "k8s.io/component-base/cli/flag"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

type pod struct {
	Name     string            `json:"name"`
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     corev1.PodSpec    `json:"spec"`
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}

func podSecurity(levelName string) {
	level, err := api.ParseLevel(levelName)
	if err != nil {
		fail(2, "%v", err)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		fail(2, "%v", err)
	}
	var pods []pod
	if err := json.NewDecoder(os.Stdin).Decode(&pods); err != nil {
		fail(2, "reading pods: %v", err)
	}
	forbidden := false
	for _, p := range pods {
		var reasons []string
		for _, r := range evaluator.EvaluatePod(api.LevelVersion{Level: level, Version: api.LatestVersion()}, &p.Metadata, &p.Spec) {
			if !r.Allowed {
				reasons = append(reasons, fmt.Sprintf("%s (%s)", r.ForbiddenReason, r.ForbiddenDetail))
			}
		}
		if len(reasons) > 0 {
			forbidden = true
			fmt.Printf("%s: forbidden: %s\n", p.Name, strings.Join(reasons, "; "))
		} else {
			fmt.Printf("%s: allowed\n", p.Name)
		}
	}
	if forbidden {
		os.Exit(1)
	}
}

func kubeletConfig() {
	var config kubeletv1beta1.KubeletConfiguration
	strict(&config)
	if _, err := cliflag.TLSCipherSuites(config.TLSCipherSuites); err != nil {
		fail(1, "tlsCipherSuites: %v", err)
	}
	fmt.Println("ok")
}

func strict(into any) {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(2, "reading stdin: %v", err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		fail(1, "%v", err)
	}
}

func main() {
	switch {
	case len(os.Args) == 3 && os.Args[1] == "pod-security":
		podSecurity(os.Args[2])
	case len(os.Args) == 2 && os.Args[1] == "kubelet-config":
		kubeletConfig()
	case len(os.Args) == 2 && os.Args[1] == "kube-proxy-config":
		strict(&kubeproxyv1alpha1.KubeProxyConfiguration{})
		fmt.Println("ok")
	default:
		fail(2, "usage: kubecheck pod-security LEVEL | kubelet-config | kube-proxy-config  (input on stdin)")
	}
}
