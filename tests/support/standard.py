"""The standard test setup: its secrets, the gateway configuration most tests run, and the simulator's
deployments. Tests import these from here (never from ``tests.conftest``, which pytest alone should load)."""

from __future__ import annotations

# Secrets of the standard test configuration. The no-leak test checks that none
# of them ever appears in a response or a log line.
SECRETS = {
    "EASTUS_KEY": "azure-key-eastus-0123456789abcdef",
    "SERVERLESS_KEY": "azure-key-serverless-fedcba9876543210",
    "ALICE_KEY": "gw-key-alice-5f1e2d3c4b5a",
    "BOB_KEY": "gw-key-bob-a5b4c3d2e1f0",
}
ALICE = SECRETS["ALICE_KEY"]
BOB = SECRETS["BOB_KEY"]

STANDARD_CONFIG = """
version: 1.2.1
cache: true
interface:
  privacyPolicy: {externalUrl: "https://example.invalid/privacy"}
endpoints:
  azureOpenAI:
    titleModel: "gpt-4o-mini"
    titleConvo: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-4o:
            deploymentName: gpt-4o-dep
          gpt-4o-mini:
            deploymentName: gpt-4o-mini-dep
            version: "2025-04-01-preview"
          text-embedding-3-small:
            deploymentName: embed-dep
      - group: tuned
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}/openai/deployments/${DEPLOYMENT_NAME}"
        deploymentName: tuned-dep
        version: "2024-10-21"
        additionalHeaders:
          x-custom-header: "from-config"
        addParams:
          temperature: 0.2
          top_p: 0.5
        dropParams: [top_p, frequency_penalty]
        models:
          gpt-tuned: true
      - group: legacy-prompt
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        forcePrompt: true
        models:
          gpt-instruct:
            deploymentName: instruct-dep
      - group: serverless
        apiKey: "${SERVERLESS_KEY}"
        baseURL: "${SIM_URL}/v1/chat/completions"
        serverless: true
        models:
          mistral-large: true
gateway:
  apiKeys:
    - name: alice
      key: "${ALICE_KEY}"
    - name: bob
      key: "${BOB_KEY}"
      models: [gpt-4o-mini]
  maxBodyBytes: 65536
  timeouts:
    connect: 2
    read: 2
  forwardHeaders: ["x-sim-*"]  # the tests steer the simulator with x-sim-* headers sent through the gateway
"""
DEPLOYMENTS = {
    "gpt-4o-dep",
    "gpt-4o-mini-dep",
    "embed-dep",
    "tuned-dep",
    "instruct-dep",
    "dalle3-dep",
    "whisper-dep",
    "tts-dep",
}
