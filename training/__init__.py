"""MedAlign training programs, run as separate processes: ``python -m training <kind> --job-dir DIR``.

Standalone: no Qt, no SQLite, never imports ``medalign_desktop``. The app imports only the light modules
``training.protocol`` (the event stream) and ``training.config`` (job configs); both use the standard
library only. See training/README.md for the contract with the app.
"""

KINDS = ("sft", "hitl")  # planned: "dpo", "reward", "ppo", "evaluate"
