"""What the models behind deployments accept: families.py (a dated table of Azure OpenAI model families)
and fit.py (how a request is fitted to its model, and what Azure's refusals teach about a deployment)."""
