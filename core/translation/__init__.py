"""Request and response rewriting between the OpenAI and Azure OpenAI wire formats."""
