"""Check 8 routes: the gateway module's routes file, applied offline, read back by the binary."""
import os
import subprocess
import tempfile
from pathlib import Path

from .common import Result, apply_offline

# Routes for check 8: a path route and a filtered extension route, as users write them.
SAMPLE_ROUTES = [
    {"name": "configs", "workqueue": "configs-wq", "repository": "my-org/infra",
     "path_patterns": ["config/(.+)\\.yaml", "apps/([^/]+)/.*"]},
    {"name": "prs", "workqueue": "prs-wq", "extension_key": "pullrequesturl", "priority": 50,
     "filters": [{"type": "dev.chainguard.github.pull_request"},
                 {"type": "dev.chainguard.github.check_run", "action": "completed"}]},
]


def render_routes(module, routes, tmp):
    """Apply the gateway's routes module (it has no resources, so no provider is needed) to
    routes; return the routes file it renders, or raise with Terraform's error."""
    work = Path(tmp) / "routes"
    work.mkdir()
    uris = {r["workqueue"]: f"https://{r['workqueue']}-rcv-abc123-uc.a.run.app" for r in routes}
    return apply_offline(module, {"routes": routes, "receiver_uris": uris}, work)["toml"]


def check_routes(modules_root, binary_path):
    """Check 8: the routes file the gateway module renders is one the binary reads
    (`reconcilers gateway --check --routes-toml`), every route in it; and a bad pattern in
    the module's input is refused by the binary, naming it."""
    res = Result("routes")
    if not os.path.exists(binary_path):
        res.errors.append(f"{binary_path} does not exist: build it with `cargo build --bin reconcilers`")
        res.summary = "the routes were not read back"
        return res
    module = modules_root / "gateway" / "routes"
    bad = SAMPLE_ROUTES + [{"name": "bad", "workqueue": "bad-wq", "repository": "o/r",
                            "path_patterns": ["(two)/(groups)"]}]
    with tempfile.TemporaryDirectory(prefix="check-routes-") as tmp, \
            tempfile.TemporaryDirectory(prefix="check-routes-bad-") as tmp_bad:
        try:
            toml, bad_toml = render_routes(module, SAMPLE_ROUTES, tmp), render_routes(module, bad, tmp_bad)
        except RuntimeError as e:
            res.errors.append(f"{module}: terraform apply failed: {e}")
            res.summary = "the routes module did not render"
            return res

    def check(text):
        return subprocess.run([binary_path, "gateway", "--check", "--routes-toml", text],
                              capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")},
                              timeout=30)
    good = check(toml)
    if good.returncode != 0:
        res.errors.append(f"the binary refuses the rendered routes: {good.stderr.strip()}\n{toml}")
    for route in SAMPLE_ROUTES:
        if f"route {route['name']}:" not in good.stdout:
            res.errors.append(f"route {route['name']} is missing from `gateway --check`: {good.stdout}")
    refused = check(bad_toml)
    if refused.returncode == 0 or "(two)/(groups)" not in refused.stderr:
        res.errors.append(f"a bad pattern was not refused by name: {refused.stdout}{refused.stderr}")
    res.summary = f"{len(SAMPLE_ROUTES)} routes rendered and read back; a bad pattern refused"
    return res
