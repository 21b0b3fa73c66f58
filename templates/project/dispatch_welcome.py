"""Dispatch a WelcomeFlow from a plain script, as with the hosted Zenaton."""
import os
from types import SimpleNamespace

from zenaton.client import Client

import boot  # noqa: F401  (imports the workflows)
from workflows.welcome_flow import WelcomeFlow

Client(os.getenv("ZENATON_APP_ID", "demo"), os.getenv("ZENATON_API_TOKEN", ""), os.getenv("ZENATON_APP_ENV", "dev"))

user = SimpleNamespace(email="ada@example.com", slack_id="U42")
WelcomeFlow(user).dispatch()
print("dispatched; run `zenaton list` to see it")
