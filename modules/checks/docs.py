"""Check 6 docs: the READMEs' inputs/outputs tables, by modules/docs.py run as a subprocess."""
import subprocess
import sys

from .common import HERE, Result


def check_docs(root):
    """Check 6: every README's inputs/outputs tables match its module (modules/docs.py)."""
    res = Result("docs")
    proc = subprocess.run([sys.executable, str(HERE / "docs.py"), "--check", "--modules", str(root)],
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        res.errors += [line for line in lines if "out of date" in line and not line.startswith("docs:")]
        res.errors += [proc.stderr.strip()] if proc.stderr.strip() else []
    res.summary = lines[-1] if lines else "docs.py printed nothing"
    return res
