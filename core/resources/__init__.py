"""Resource-scoped APIs: assistants, threads (messages, runs, steps), vector stores, files, batches and
responses. Their objects live in an Azure resource, not a deployment, so there is no deployment in their URLs.

handler.py serves every such route: paths.py matches the path and checks its ids, call.py parses the
request into a ResourceCall, isolation.py checks what the caller key may reach, targeting.py picks the
group that serves the call (affinity.py: which group holds an object), and forwarding.py sends it there,
or listing.py lists across every group.
"""
