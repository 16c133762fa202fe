"""The checks `pulumi up` runs from the deployer's machine: the API answers through the load balancer with the
exported admin kubeconfig, and every worker's NodePort serves nginx's welcome page.

They are Python, run by the very interpreter that runs the program, so they behave the same on Linux and on a Mac
(whose /bin/bash 3.2 breaks ordinary bash idioms). This module ships its own source as the script (the way
podcidrs.py does) and needs nothing beyond the standard library, except the kubernetes client for the API check,
which loads the kubeconfig exactly as a user's tools would. Every wait is bounded and a failure names what was
waited for. Tests import the functions and drive them against local servers.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
import urllib.request
from typing import Callable, Mapping

WELCOME = "Welcome to nginx!"


class CheckFailed(RuntimeError):
    pass


def _fetch_page(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:      # noqa: S310 (http URLs of our workers)
        return response.read(65536).decode("utf-8", "replace")


def wait_for_welcome_pages(urls: Mapping[str, str], *, timeout: float, interval: float = 3,
                           fetch: Callable[[str, float], str] = _fetch_page,
                           clock: Callable[[], float] = time.monotonic,
                           sleep: Callable[[float], None] = time.sleep, log: Callable[[str], None] = print) -> None:
    """Fetch every worker's page until each has answered with nginx's welcome page once, within one shared bound;
    raise naming every worker that did not, with the last thing it answered."""
    deadline = clock() + timeout
    pending = dict(urls)
    last: dict[str, str] = {}
    while True:
        for name, url in list(pending.items()):
            try:
                page = fetch(url, 5)
                if WELCOME in page:
                    log(f"{name}: {WELCOME} ({url})")
                    del pending[name]
                    continue
                last[name] = f"a page without {WELCOME!r}"
            except Exception as err:        # refused, timed out, reset: the worker is not serving yet
                last[name] = str(err)
        if not pending:
            return
        if clock() >= deadline:
            raise CheckFailed("\n".join(f"{name} did not answer {WELCOME!r} at {url} within {timeout:.0f}s "
                                        f"(last: {last.get(name, 'nothing')})" for name, url in pending.items()))
        sleep(min(interval, max(0.0, deadline - clock())))


def wait_for_api(kubeconfig: Mapping, *, timeout: float, interval: float = 10,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 log: Callable[[str], None] = print) -> str:
    """With the kubeconfig a user gets, ask the API server /readyz and its version, until both answer within the
    bound; return the version. Raise naming the server and the last error."""
    from kubernetes import client, config   # the one dependency: the client users' own tools behave like

    server = kubeconfig["clusters"][0]["cluster"]["server"]
    deadline = clock() + timeout
    last = "nothing"
    while True:
        try:
            api = config.new_client_from_config_dict(dict(kubeconfig), persist_config=False)
            try:
                ready = api.call_api("/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False,
                                     _return_http_data_only=True, _request_timeout=10).data.decode("utf-8", "replace")
                version = client.VersionApi(api).get_code(_request_timeout=10).git_version
            finally:
                api.close()
            log(f"{server}/readyz: {ready}; version {version}")
            return version
        except Exception as err:            # not resolvable yet, no healthy target yet, refused: keep asking
            last = f"{type(err).__name__}: {err}".splitlines()[0]
        if clock() >= deadline:
            raise CheckFailed(f"the API does not answer through the load balancer {server} within {timeout:.0f}s "
                              f"(last: {last}); check that your address is in adminCidrs and the target group's "
                              "health in the AWS console")
        sleep(min(interval, max(0.0, deadline - clock())))


def main(check: str, argument: str, timeout: float) -> int:
    try:
        if check == "nodeports":
            wait_for_welcome_pages(json.loads(argument), timeout=timeout)
        else:
            wait_for_api(json.loads(argument), timeout=timeout)
    except CheckFailed as err:
        print(err, file=sys.stderr)
        return 1
    return 0


def _program(check: str, argument: str, timeout: int) -> str:
    """This module's source followed by the call, as one Python program to run with `python -`."""
    source = inspect.getsource(sys.modules[__name__])
    return f"{source}\nsys.exit(main({check!r}, {argument!r}, {timeout}))\n"


def nodeport_check_program(urls: Mapping[str, str], timeout_seconds: int = 300) -> str:
    return _program("nodeports", json.dumps(dict(urls)), timeout_seconds)


def api_check_program(kubeconfig: str, timeout_seconds: int = 900) -> str:
    """The program embeds the kubeconfig: the step that runs it keeps it secret and its logging off."""
    return _program("api", json.dumps(json.loads(kubeconfig)), timeout_seconds)


def on_node(program: str) -> str:
    """The same program as a remote step's bash script, run with the node's python3 (the private topology fetches
    the pages from a worker, whose security group admits the other workers)."""
    return ("#!/bin/bash\n# Verification: every worker serves nginx's welcome page on the NodePort.\n"
            "set -euo pipefail\npython3 - <<'K8S_FROM_SCRATCH_EOF'\n" + program + "K8S_FROM_SCRATCH_EOF\n")

sys.exit(main('nodeports', '{"worker-0": "http://<public address>:30080/", "worker-1": "http://<public address>:30080/", "worker-2": "http://<public address>:30080/"}', 300))
