"""Check 10 dashboard: the workqueue dashboard section, applied offline for each scope (it has
no resources, so no provider is needed), renders charts the Monitoring API takes: each series a
filter with its aggregation or a PromQL query, never both; a completion-rate chart by status; and
with a queue per region, the queue's own series a line per region."""
import tempfile

from .common import Result, apply_offline


def problems(tiles, scope):
    """What is wrong with the tiles of one scope."""
    found, charts = [], {t["widget"]["title"]: t["widget"].get("xyChart") for t in tiles}
    for title, chart in charts.items():
        for data in (chart or {}).get("dataSets", []):
            query = data["timeSeriesQuery"]
            if ("prometheusQuery" in query) == ("timeSeriesFilter" in query):
                found.append(f"{scope}: {title}: a series must be a filter or a PromQL query: {query}")
            grouped = query.get("timeSeriesFilter", {}).get("aggregation", {}).get("groupByFields", [])
            gauge = "/gauge\"" in query.get("timeSeriesFilter", {}).get("filter", "")
            if scope == "regional" and gauge and 'resource.label."location"' not in grouped:
                found.append(f"{scope}: {title}: a gauge of a regional queue is not per region")
    completions = [c for t, c in charts.items() if t.startswith("Completions by status")]
    queries = [d["timeSeriesQuery"].get("prometheusQuery", "") for c in completions for d in c["dataSets"]]
    if not any("by (status" in q and "_count" in q for q in queries):
        found.append(f"{scope}: no completion-rate chart by status: {queries}")
    if scope == "regional" and not any("location" in q for q in queries):
        found.append(f"{scope}: the completion rate is not per region: {queries}")
    return found


def check_dashboard(modules_root):
    """Check 10: the workqueue section rendered for scope global and regional."""
    res = Result("dashboard")
    module = modules_root / "dashboard" / "sections" / "workqueue"
    for scope in ("global", "regional"):
        variables = {"name": "wq", "concurrent_work": 5, "max_retry": 3, "scope": scope}
        with tempfile.TemporaryDirectory(prefix=f"check-dashboard-{scope}-") as tmp:
            try:
                tiles = apply_offline(module, variables, tmp)["tiles"]
            except RuntimeError as e:
                res.errors.append(f"{module}: terraform apply failed for scope {scope}: {e}")
                continue
        res.errors += problems(tiles, scope)
    res.summary = "the workqueue section rendered for scope global and regional"
    return res
