"""The agent-facing relay (docs/relay-protocol.md), mounted at /relay/v1/."""

from django.urls import path

from loading import relay

app_name = "relay"

urlpatterns = [
    path("hello", relay.hello, name="hello"),
    path("poll", relay.poll, name="poll"),
    path("conversations/<uuid:conversation_id>/scripts/<int:seq>", relay.step, name="step"),
]
