"""Run the real program (`__main__.py`) under Pulumi mocks with preview=False and record everything it declared.

`run_program(config)` returns a `ProgramRun`: every registered resource with its type, name, parent, dependencies,
options and resolved inputs (secret inputs known as such), and every stack output resolved, with its secretness.
Resolution fails loudly on an unknown value, so no assertion can pass by never running.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import io
import functools
import re
import base64
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

from cluster.render import podcidrs
from infra.lifecycle import RULES
from infra.settings import lab_machines as lab_machines_env
from simulator.realistic_tls import TLS_OUTPUTS

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "__main__.py"
PROJECT = "k8s-from-scratch"
# What the CLI names the organization of a stack in a file backend (Pulumi Cloud gives the real one).
ORGANIZATION = "organization"
REGION = "eu-west-1"
ZONES = [f"{REGION}{z}" for z in "abcdef"]


class UnknownValueError(AssertionError):
    pass


def unwrap_secrets(value: Any, path: str = "") -> tuple[Any, set[str]]:
    """Strip Pulumi's secret wrappers from deserialized inputs; return the plain value and the secret paths."""
    if rpc.is_rpc_secret(value):
        plain, inner = unwrap_secrets(value["value"], path)
        return plain, {path, *inner}
    if isinstance(value, dict):
        plain, secrets = {}, set()
        for k, v in value.items():
            plain[k], s = unwrap_secrets(v, f"{path}.{k}" if path else k)
            secrets |= s
        return plain, secrets
    if isinstance(value, list):
        plain, secrets = [], set()
        for i, v in enumerate(value):
            p, s = unwrap_secrets(v, f"{path}[{i}]")
            plain.append(p)
            secrets |= s
        return plain, secrets
    return value, set()


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    id: str
    inputs: dict[str, Any]
    secret_inputs: set[str]
    outputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    deleted_with: str
    additional_secret_outputs: list[str]
    custom_timeouts: dict[str, str]
    ignore_changes: list[str]
    custom: bool
    delete_before_replace: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)   # alias URNs and specs, as recorded
    retain_on_delete: bool = False

    def edges(self) -> set[str]:
        """What this resource waits for: its explicit dependencies and the resources its inputs come from."""
        return set(self.dependencies) | {u for us in self.property_dependencies.values() for u in us}

    def depends_on_urn(self, urn: str) -> bool:
        return urn in self.edges()


@dataclass
class ProgramRun:
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    calls: list[tuple[str, dict]] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str, type_: str | None = None) -> Resource:
        matches = [r for r in self.resources if r.name == name and (type_ is None or r.type == type_)]
        assert len(matches) == 1, f"expected one resource named {name}, found {len(matches)}"
        return matches[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def custom_edges(self, r: Resource) -> set[str]:
        """The custom resources `r` waits for: a dependency on a component stands for every custom resource under
        it (through nested components), as the engine waits for all of them."""
        found = set()
        for urn in r.edges() - {r.urn}:
            found |= {urn} if urn in self._customs else self._custom_under(urn)
        return found - {r.urn}

    @functools.cached_property
    def _customs(self) -> set[str]:
        return {r.urn for r in self.resources if r.custom}

    @functools.cached_property
    def _children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {}
        for r in self.resources:
            children.setdefault(r.parent, []).append(r.urn)
        return children

    def _custom_under(self, urn: str) -> set[str]:
        found: set[str] = set()
        for child in self._children.get(urn, []):
            found |= {child} if child in self._customs else self._custom_under(child)
        return found


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The stock mock monitor, also keeping what the stock one drops: parent, dependencies and options."""

    def __init__(self, mocks: "ClusterMocks"):
        super().__init__(mocks)
        self.recorded: list[Resource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        inputs, secret_paths = unwrap_secrets(rpc.deserialize_properties(request.object))
        state = self.resources[response.urn].state
        outputs, _ = unwrap_secrets(state)
        timeouts = request.customTimeouts
        self.recorded.append(Resource(
            type=request.type, name=request.name, urn=response.urn, id=response.id, inputs=inputs, secret_inputs=secret_paths,
            outputs=outputs, parent=request.parent, dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            deleted_with=request.deletedWith, additional_secret_outputs=list(request.additionalSecretOutputs),
            custom_timeouts={k: getattr(timeouts, k) for k in ("create", "update", "delete") if getattr(timeouts, k)},
            ignore_changes=list(request.ignoreChanges), custom=request.custom,
            delete_before_replace=request.deleteBeforeReplace, replace_on_changes=list(request.replaceOnChanges),
            aliases=[*request.aliasURNs, *(str(a).strip() for a in request.aliases)],
            retain_on_delete=request.retainOnDelete,
        ))
        return response


def _stable_hex(name: str) -> str:
    """12 hex digits from a name, the same in every process (the lab runs the program again in a later command,
    and instance ids are in every step's triggers)."""
    return hashlib.sha256(name.encode()).hexdigest()[:12]


# EC2 instance types the mocks know (DescribeInstanceTypes: supported architectures, default vCPUs); any other is
# answered as EC2 answers a type it does not have.
INSTANCE_TYPES = {
    **{f"t3.{size}": (("x86_64",), 2) for size in ("nano", "micro", "small", "medium", "large")},
    **{f"t3a.{size}": (("x86_64",), 2) for size in ("micro", "small", "medium", "large")},
    **{f"t4g.{size}": (("arm64",), 2) for size in ("nano", "micro", "small", "medium", "large")},
    "t3.xlarge": (("x86_64",), 4), "t3.2xlarge": (("x86_64",), 8), "t4g.xlarge": (("arm64",), 4),
    "m5.large": (("x86_64",), 2), "m5.xlarge": (("x86_64",), 4), "m6g.large": (("arm64",), 2),
    "c5.xlarge": (("x86_64",), 4), "g5.xlarge": (("x86_64",), 4),
}
AMIS = {"arm64": "ami-0fedcba9876543210", "x86_64": "ami-0abcdef1234567890"}
# Service Quotas: Standard vCPUs as in an account whose quota was raised for clusters (new accounts start at 5 to
# 64: tests that check the refusal pass their own), and AWS's default of 5 Elastic IPs per region.
QUOTAS = {"L-1216C47A": 1024.0, "L-0263D0A3": 5.0}
# What the provider says when a singular lookup finds nothing (terraform-provider-aws).
NO_LOAD_BALANCER = "Search returned 0 results, please revise so only one is returned"
NO_KEY_PAIR = "no matching EC2 Key Pair found"
NO_AMI = "Your query returned no results. Please change your search criteria and try again."
# When the mocks' nodes registered with the API: first, and again (with another range).
REGISTERED = "2026-01-01T00:00:00Z"
REGISTERED_AGAIN = "2026-01-02T00:00:00Z"


class ProviderError(Exception):
    """An error the provider answers a lookup with."""


class ClusterMocks(pulumi.runtime.Mocks):
    """Consistent ids and addresses for AWS resources; real key material for pulumi-tls resources; EC2, ELBv2 and
    Service Quotas lookups answered from what AWS holds (the previous run's resources and any others given)."""

    def __init__(self, extra_outputs: Callable[[pulumi.runtime.MockResourceArgs], dict] | None = None,
                 key_material: dict | None = None, pod_cidrs: dict[str, str | None] | None = None,
                 existing: "ProgramRun | None" = None, existing_instances: list[dict] | None = None,
                 quotas: dict[str, float] | None = None, not_offered: set[tuple[str, str]] | None = None,
                 load_balancers: list[dict] | None = None, eips: list[dict] | None = None,
                 gone_images: set[str] | None = None, deployer: Callable[[str, str], str] | None = None,
                 registered: dict[str, str] | None = None, generations: dict[str, int] | None = None):
        """`key_material`: share one dict between runs to get the same keys and certificates for the same inputs,
        so that two runs differ only where the program's inputs differ.
        `existing`: what AWS holds before this run (the resources of this stack's previous `pulumi up`, or of
        another stack): instances, load balancers, target groups, key pairs and Elastic IPs are looked up there,
        and a remote step declared with the inputs it had there keeps its outputs (the engine does not run it).
        None: a new stack in an empty account.
        `pod_cidrs`: what the API answers for node.spec.podCIDR (node name -> range, None for not yet assigned);
        a node it does not name, worker-N, has 10.200.N.0/24.
        `existing_instances`: more instances AWS reports, each {"id", "tags", "rootVolumeGb"} and optionally
        "privateIp", "keyName", "instanceType", "architecture" (x86_64 or arm64), "ami", and the tags on its
        primary interface, "interfaceTags".
        `quotas`: Service Quotas values by code (QUOTAS by default). `not_offered`: (instance type, zone) pairs EC2
        does not offer. `load_balancers`: more load balancers and target groups, each {"name", "tags", "kind":
        "load balancer" | "target group"}. `eips`: more Elastic IPs, each {"tags"}. `gone_images`: AMIs
        deregistered since. `deployer(command, stdin) -> stdout`: runs the program's `command:local:run` invokes
        for real (the lab's deployer); None: they are answered here. `registered`: when each node's Node object
        was created, as the API says (node name -> RFC 3339); by default REGISTERED, or REGISTERED_AGAIN for a
        node whose range is not the one it gets first. `generations`: node name -> how many times its machine was
        made anew (terminated out of band and created again): each time, its instance gets a new id."""
        self.existing_instances = existing_instances or []
        self.calls: list[tuple[str, dict]] = []
        self.declared: list[tuple[str, str]] = []      # (type, name) of every resource the program registered
        self.pod_cidrs = pod_cidrs
        self.node_ips: dict[str, str] = {}
        self._public_ips = 0
        self.extra_outputs = extra_outputs
        self.key_material = key_material
        self.existing = existing
        self.quotas = {**QUOTAS, **(quotas or {})}
        self.not_offered = not_offered or set()
        self.load_balancers = load_balancers or []
        self.eips = eips or []
        self.gone_images = gone_images or set()
        self.deployer = deployer
        self.registered = registered or {}
        self.generations = generations or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.declared.append((args.typ, args.name))
        inputs, _ = unwrap_secrets(args.inputs)
        outputs = dict(inputs)
        # Unique per type: a subnet and its route table association may share a name.
        resource_id = f"{args.name}-{args.typ.rsplit(':', 1)[-1].lower()}-id"
        if args.typ in TLS_OUTPUTS:
            if self.key_material is None:
                outputs.update(TLS_OUTPUTS[args.typ](inputs))
            else:
                key = (args.typ, args.name, json.dumps(inputs, sort_keys=True, default=str))
                if key not in self.key_material:
                    self.key_material[key] = TLS_OUTPUTS[args.typ](inputs)
                outputs.update(self.key_material[key])
        elif args.typ == "random:index/randomBytes:RandomBytes":
            outputs["base64"] = base64.b64encode(hashlib.sha256(args.name.encode()).digest()).decode()
            outputs["hex"] = hashlib.sha256(args.name.encode()).hexdigest()
        elif args.typ == "command:remote:Command" and (kept := self._unchanged_step(args.name, inputs)):
            # Same inputs as in state: the engine runs nothing and the step keeps what it answered then.
            return kept.id, {**outputs, **{k: v for k, v in kept.outputs.items() if k in ("stdout", "stderr")}}
        elif args.typ == "command:remote:Command" and args.name.endswith("-read-pod-cidr"):
            outputs["stdout"] = self._read_pod_cidrs(inputs["stdin"])
            outputs["stderr"] = ""
        elif args.typ == "aws:ec2/instance:Instance":
            hostname = re.search(r"^hostname: (\S+)$", inputs.get("userData", ""), re.M)
            if hostname:
                self.node_ips[hostname.group(1)] = inputs.get("privateIp")
            generation = self.generations.get(hostname.group(1)) if hostname else None
            machine = f"{args.name}#{generation}" if generation else args.name
            resource_id = f"i-{_stable_hex(machine)}"
            outputs["privateIp"] = inputs.get("privateIp")
            outputs["primaryNetworkInterfaceId"] = f"eni-{_stable_hex(machine)}"
            outputs["arn"] = f"arn:aws:ec2:{REGION}:123456789012:instance/{resource_id}"
            if inputs.get("associatePublicIpAddress"):
                outputs["publicIp"] = self._public_ip(args.name)
            else:
                outputs["publicIp"] = ""
        elif args.typ == "aws:lb/loadBalancer:LoadBalancer":
            outputs["dnsName"] = f"{args.name}-0123456789abcdef.elb.{REGION}.amazonaws.com"
            outputs["arn"] = f"arn:aws:elasticloadbalancing:{REGION}:123456789012:loadbalancer/net/{args.name}/1"
        elif args.typ == "aws:lb/targetGroup:TargetGroup":
            outputs["arn"] = f"arn:aws:elasticloadbalancing:{REGION}:123456789012:targetgroup/{args.name}/1"
        elif args.typ == "aws:s3/bucket:Bucket" and not inputs.get("bucket"):
            # S3's name: the prefix and 26 unique characters (here derived, so stable).
            outputs["bucket"] = inputs.get("bucketPrefix", "") + hashlib.sha256(args.name.encode()).hexdigest()[:26]
            outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
        if args.typ in RULES and RULES[args.typ].autoname and not inputs.get(RULES[args.typ].autoname[0]):
            # As the provider names it: the Pulumi name, '-' and 7 random characters (here derived, so stable).
            outputs[RULES[args.typ].autoname[0]] = f"{args.name}-{hashlib.sha256(args.name.encode()).hexdigest()[:7]}"
        if self.extra_outputs:
            outputs.update(self.extra_outputs(args) or {})
        return resource_id, outputs

    def _unchanged_step(self, name: str, inputs: dict) -> "Resource | None":
        if self.existing is None:
            return None
        before = [r for r in self.existing.of_type("command:remote:Command") if r.name == name]
        return before[0] if len(before) == 1 and before[0].inputs == inputs and before[0].outputs.get("stdout") \
            is not None else None

    def _public_ip(self, instance_name: str) -> str:
        """An instance keeps the public address it had in the previous run (instances register in whatever order
        their inputs resolve, so a counter alone would shuffle addresses between runs); a new one gets the next
        free address. TEST-NET-3 (RFC 5737): documentation addresses that can never be reached from here."""
        previous = {r.name: r.outputs.get("publicIp") for r in
                    (self.existing.of_type("aws:ec2/instance:Instance") if self.existing else [])}
        if previous.get(instance_name):
            return previous[instance_name]
        taken = set(previous.values())
        while True:
            self._public_ips += 1
            address = f"203.0.113.{self._public_ips}"
            if address not in taken:
                return address

    def node_list(self, expected: list[str], ips: dict[str, str] | None = None) -> dict:
        """What `kubectl get nodes -o json` would answer once the workers registered. A node whose range is not the
        one worker-N gets first (10.200.N.0/24) registered again later (the range allocator gave it another)."""
        items = []
        for name in expected:
            first = f"10.200.{int(name.rsplit('-', 1)[1])}.0/24"
            cidr = (self.pod_cidrs or {}).get(name, first)
            spec = {"podCIDR": cidr} if cidr else {}
            created = self.registered.get(name) or (REGISTERED if cidr == first else REGISTERED_AGAIN)
            items.append({"metadata": {"name": name, "creationTimestamp": created},
                          "spec": spec,
                          "status": {"addresses": [{"type": "InternalIP", "address": (ips or self.node_ips)[name]},
                                                   {"type": "Hostname", "address": name}]}})
        return {"kind": "List", "items": items}

    def _read_pod_cidrs(self, script: str) -> str:
        """Answer a worker's reader step as it would answer on the worker, through the reader's own code."""
        expected = ast.literal_eval(re.search(r"sys\.exit\(main\((\[.*?\])", script).group(1))
        ranges = podcidrs.wait_for_pod_cidrs(expected, lambda: self.node_list(expected), timeout=0,
                                             sleep=lambda _: None)
        return podcidrs.RESULT_PREFIX + json.dumps([dataclasses.asdict(r) for r in ranges]) + "\n"

    def _call_run(self, a):
        """`command:local:run`: the live read of the nodes' ranges. None on a new stack (no API answers yet); run
        by `deployer` when there is one (the lab); else answered through the program's own code from the workers
        AWS holds."""
        if "live_main(" not in a.get("stdin", ""):
            raise AssertionError(f"unexpected local run: {a.get('command')}")
        if self.existing is None:
            stdout = podcidrs.UNAVAILABLE_PREFIX + "no cluster answers yet\n"
        elif self.deployer is not None:
            stdout = self.deployer(a["command"], a["stdin"])
        else:
            ips = {node: r.inputs.get("privateIp") for r in self._held("aws:ec2/instance:Instance")
                   if (r.inputs.get("tags") or {}).get("role") == "workers"
                   and (node := re.search(r"^hostname: (\S+)$", r.inputs.get("userData", ""), re.M).group(1))}
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                podcidrs.live_main({}, 0, fetch=lambda kubeconfig, timeout: self.node_list(sorted(ips), ips))
            stdout = out.getvalue()
        return {"command": a.get("command"), "stdout": stdout, "stderr": ""}

    # --- lookups (invokes), answered as AWS would ----------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        handler = getattr(self, f"_call_{args.token.split(':')[-1]}", None)
        if handler is None:
            raise AssertionError(f"unexpected invoke {args.token}")
        try:
            return handler(args.args)
        except ProviderError as err:
            # As the engine returns a provider's error: the program gets "invoke of <token> failed: <message>".
            return {}, [("", str(err))]

    def _held(self, type_: str) -> list[Resource]:
        return self.existing.of_type(type_) if self.existing is not None else []

    def _call_getAvailabilityZones(self, a):
        return {"names": ZONES[:3], "zoneIds": [f"euw1-az{i}" for i in range(1, 4)], "id": REGION}

    def _call_getAmi(self, a):
        filters = {f.get("name"): f.get("values") or [] for f in a.get("filters") or []}
        if "image-id" in filters:
            wanted = filters["image-id"][0]
            if wanted in self.gone_images or wanted not in AMIS.values():
                raise ProviderError(NO_AMI)
            arch = next(k for k, v in AMIS.items() if v == wanted)
            return {"id": wanted, "architecture": arch, "name": "ubuntu-noble-24.04"}
        if "arm64" in filters.get("architecture", []):
            return {"id": AMIS["arm64"], "architecture": "arm64", "name": "ubuntu-noble-24.04-arm64"}
        return {"id": AMIS["x86_64"], "architecture": "x86_64", "name": "ubuntu-noble-24.04"}

    def _call_getInstances(self, a):
        found = self._existing_instances(a)
        return {"id": REGION, "ids": [d["id"] for d in found], "privateIps": [d["privateIp"] for d in found],
                "publicIps": [d["publicIp"] for d in found], "ipv6Addresses": []}

    def _call_getInstance(self, a):
        wanted_id = a.get("instanceId")
        found = [d for d in self._existing_instances(a) if wanted_id in (None, "", d["id"])]
        if len(found) != 1:
            # What the provider says when the lookup does not match exactly one instance.
            raise ProviderError(f"Your query returned {'no' if not found else 'more than one'} results")
        return found[0]

    def _call_getInstanceType(self, a):
        wanted = a.get("instanceType")
        if wanted not in INSTANCE_TYPES:
            raise ProviderError(f"reading EC2 Instance Type ({wanted}): operation error EC2: DescribeInstanceTypes, "
                                 "api error InvalidInstanceType: The following supplied instance types do not exist: "
                                 f"[{wanted}]")
        archs, vcpus = INSTANCE_TYPES[wanted]
        return {"id": wanted, "instanceType": wanted, "supportedArchitectures": list(archs), "defaultVcpus": vcpus}

    def _call_getInstanceTypeOfferings(self, a):
        filters = {f.get("name"): f.get("values") or [] for f in a.get("filters") or []}
        pairs = [(t, z) for t in filters.get("instance-type", []) if t in INSTANCE_TYPES
                 for z in filters.get("location", ZONES[:3]) if z in ZONES[:3] and (t, z) not in self.not_offered]
        return {"id": REGION, "instanceTypes": [t for t, _ in pairs], "locations": [z for _, z in pairs],
                "locationTypes": ["availability-zone"] * len(pairs)}

    def _call_getServiceQuota(self, a):
        code = a.get("quotaCode")
        if code not in self.quotas:
            raise AssertionError(f"unexpected quota {code}")
        return {"id": f"{a.get('serviceCode')}/{code}", "quotaCode": code, "serviceCode": a.get("serviceCode"),
                "value": self.quotas[code]}

    def _call_getEips(self, a):
        held = [{"id": r.id, "tags": r.inputs.get("tags") or {}} for r in self._held("aws:ec2/eip:Eip")]
        held += [{"id": f"eipalloc-extra{i}", "tags": e.get("tags") or {}} for i, e in enumerate(self.eips)]
        wanted = a.get("tags") or {}
        found = [e for e in held if all(e["tags"].get(k) == v for k, v in wanted.items())]
        return {"id": REGION, "allocationIds": [e["id"] for e in found], "publicIps": ["" for _ in found]}

    def _named(self, kind: str, name: str) -> dict:
        type_ = {"load balancer": "aws:lb/loadBalancer:LoadBalancer", "target group": "aws:lb/targetGroup:TargetGroup"}
        held = [{"name": r.inputs.get("name"), "arn": r.outputs.get("arn"), "tags": r.inputs.get("tags") or {}}
                for r in self._held(type_[kind])]
        held += [{"name": lb["name"], "arn": f"arn:{lb['name']}", "tags": lb.get("tags") or {}}
                 for lb in self.load_balancers if lb.get("kind", "load balancer") == kind]
        found = [h for h in held if h["name"] == name]
        if not found:
            raise ProviderError(NO_LOAD_BALANCER)
        return {"id": found[0]["arn"], **found[0]}

    def _call_getLoadBalancer(self, a):
        return self._named("load balancer", a.get("name"))

    def _call_getTargetGroup(self, a):
        return self._named("target group", a.get("name"))

    def _call_getKeyPair(self, a):
        for r in self._held("aws:ec2/keyPair:KeyPair"):
            if r.outputs.get("keyName") == a.get("keyName"):
                return {"id": r.id, "keyName": r.outputs["keyName"], "keyPairId": r.id,
                        "publicKey": r.inputs.get("publicKey"), "tags": r.inputs.get("tags") or {}}
        raise ProviderError(NO_KEY_PAIR)

    def _interface_tags(self) -> dict[str, dict[str, str]]:
        """Network interface id -> its tags: those the stack's `aws.ec2.Tag` resources put there."""
        tags: dict[str, dict[str, str]] = {}
        for t in self._held("aws:ec2/tag:Tag"):
            tags.setdefault(t.inputs.get("resourceId"), {})[t.inputs.get("key")] = t.inputs.get("value")
        return tags

    def _call_getNetworkInterfaces(self, a):
        """The primary interfaces of the instances AWS holds, by `tag:K` and `attachment.instance-id` filters."""
        tags = self._interface_tags()
        interfaces = [(r.outputs.get("primaryNetworkInterfaceId"), r.id) for r in self._held("aws:ec2/instance:Instance")]
        interfaces += [(i.get("networkInterfaceId", f"eni-{i['id']}"), i["id"]) for i in self.existing_instances]
        for i in self.existing_instances:
            for k, v in (i.get("interfaceTags") or {}).items():
                tags.setdefault(i.get("networkInterfaceId", f"eni-{i['id']}"), {})[k] = v
        found = []
        for eni, instance in interfaces:
            ok = True
            for f in a.get("filters") or []:
                name, values = f.get("name", ""), f.get("values") or []
                if name.startswith("tag:"):
                    ok &= tags.get(eni, {}).get(name[4:]) in values
                elif name == "attachment.instance-id":
                    ok &= instance in values
                else:
                    raise AssertionError(f"unexpected network interface filter {name}")
            if ok:
                found.append(eni)
        return {"id": REGION, "ids": found}

    def _existing_instances(self, query: dict) -> list[dict]:
        """The instances AWS holds before this run (`existing_instances`, and `existing`'s), as getInstance
        describes them, matching an EC2 lookup's tags (`instanceTags`, `tag:K` and `tag-key` filters) and its
        `architecture`, `instance-type` and `key-name` filters; every one is running."""
        described = [self._describe_instance(i) for i in self.existing_instances]
        described += [self._describe_run_instance(r) for r in self._held("aws:ec2/instance:Instance")]
        tags = {k: [v] for k, v in (query.get("instanceTags") or {}).items()}
        attributes = {"architecture": "architecture", "instance-type": "instanceType", "key-name": "keyName",
                      "network-interface.network-interface-id": "networkInterfaceId"}
        wanted = {}
        for f in query.get("filters") or []:
            name, values = f.get("name", ""), f.get("values") or []
            if name.startswith("tag:"):
                tags[name[4:]] = values
            else:
                wanted[name] = values
        return [d for d in described
                if all(d["tags"].get(k) in v for k, v in tags.items())
                and all(k in d["tags"] for k in wanted.get("tag-key", []))
                and all(d.get(field) in wanted[f] for f, field in attributes.items() if f in wanted)]

    @staticmethod
    def _describe_instance(i: dict) -> dict:
        arch = i.get("architecture") or {"arm64": "arm64"}.get(i["tags"].get("architecture"), "x86_64")
        return {"id": i["id"], "instanceId": i["id"], "tags": i["tags"], "instanceTags": i["tags"],
                "instanceState": "running", "privateIp": i.get("privateIp", ""), "publicIp": "",
                "keyName": i.get("keyName", ""), "instanceType": i.get("instanceType", "t3.medium"),
                "architecture": arch, "ami": i.get("ami", AMIS[arch]),
                "networkInterfaceId": i.get("networkInterfaceId", f"eni-{i['id']}"),
                "rootBlockDevices": [{"deviceName": "/dev/sda1", "volumeSize": i["rootVolumeGb"]}]}

    @staticmethod
    def _describe_run_instance(r: Resource) -> dict:
        root = r.inputs.get("rootBlockDevice") or {}
        ami = r.inputs.get("ami")
        return {
            "id": r.id, "instanceId": r.id, "arn": r.outputs.get("arn", ""), "ami": ami,
            "architecture": next((k for k, v in AMIS.items() if v == ami), "x86_64"),
            "instanceType": r.inputs.get("instanceType"), "instanceState": "running",
            "keyName": r.inputs.get("keyName"), "subnetId": r.inputs.get("subnetId"),
            "privateIp": r.outputs.get("privateIp") or "", "publicIp": r.outputs.get("publicIp") or "",
            "networkInterfaceId": r.outputs.get("primaryNetworkInterfaceId") or "",
            "instanceTags": r.inputs.get("tags") or {}, "tags": r.inputs.get("tags") or {},
            "vpcSecurityGroupIds": r.inputs.get("vpcSecurityGroupIds") or [],
            "rootBlockDevices": [{"deviceName": "/dev/sda1", "volumeSize": root.get("volumeSize"),
                                  "volumeType": root.get("volumeType"), "encrypted": root.get("encrypted"),
                                  "deleteOnTermination": root.get("deleteOnTermination")}],
        }


ADMIN_CIDRS = ["100.64.7.0/24"]     # not a documentation range: settings refuse those


def stack_config(etcd: int = 3, controllers: int = 3, workers: int = 3, *, admin: list[str] | None = None,
                 **extra: Any) -> dict[str, Any]:
    """A stack's config with these node counts (the tests' common shape); `extra` keys as the settings name them."""
    return {"adminCidrs": admin or ADMIN_CIDRS, "etcd": {"count": etcd}, "controllers": {"count": controllers},
            "workers": {"count": workers}, **extra}


def _config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


async def _resolve(value: Any, path: str, secrets: set[str]) -> Any:
    if isinstance(value, pulumi.Output):
        if not await value.is_known():
            raise UnknownValueError(f"output {path} is unknown")
        if await value.is_secret():
            secrets.add(path)
        value = await value.future()
    if isinstance(value, dict):
        return {k: await _resolve(v, f"{path}.{k}", secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [await _resolve(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    return value


def run_pulumi(build: Callable[[], dict[str, Any] | None], *, config: dict[str, Any] | None = None,
               stack: str = "dev", mocks: ClusterMocks | None = None, secret_keys: tuple[str, ...] = (),
               organization: str = ORGANIZATION) -> ProgramRun:
    """Run `build` as a Pulumi program under fresh mocks; resolve what it returns (or, if it returns None, the
    stack's exports). Raises what the program raises and fails on any unknown value."""
    mocks = mocks or ClusterMocks()
    monitor = RecordingMonitor(mocks)
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor,
                             organization=organization)
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": _config_value(v) for k, v in (config or {}).items()},
                                  [f"{PROJECT}:{k}" for k in secret_keys])
    resolved: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    async def resolve(values: dict[str, Any]):
        for key, value in values.items():
            resolved[key] = await _resolve(value, key, secret_outputs)

    @pulumi.runtime.test
    def program():
        returned = build()
        values = returned if returned is not None else pulumi.runtime.get_root_resource().outputs
        return asyncio.ensure_future(resolve(values))

    program()
    return ProgramRun(resources=monitor.recorded, outputs=resolved, secret_outputs=secret_outputs, calls=mocks.calls)


def run_program(config: dict[str, Any], *, stack: str = "dev", mocks: ClusterMocks | None = None,
                secret_keys: tuple[str, ...] = (), organization: str = ORGANIZATION,
                lab_machines: bool = False) -> ProgramRun:
    """Run __main__.py with this project config (keys without the project prefix; `secret_keys` are marked secret
    as `pulumi config set --secret` would); raise what the program raises. `lab_machines`: run it as the lab does,
    which may describe its machines (infra/settings.py WORKER_HOST_KEYS)."""
    def main() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    with lab_machines_env() if lab_machines else contextlib.nullcontext():
        return run_pulumi(main, config=config, stack=stack, mocks=mocks, secret_keys=secret_keys,
                          organization=organization)
