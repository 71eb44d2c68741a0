"""POST /api/v1/support/assistant/: the support assistant for guests (anonymous) and hosts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from .assistant.service import assistant_answer
from .assistant.topics import Topic


class AssistantContextSerializer(serializers.Serializer):
    station_id = serializers.CharField(
        max_length=60, required=False, allow_blank=True, allow_null=True
    )
    session_id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1
    )
    email = serializers.EmailField(required=False, allow_blank=True, allow_null=True)


class AssistantRequestSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=2000, trim_whitespace=True)
    conversation = serializers.CharField(
        max_length=40, required=False, allow_null=True, allow_blank=True
    )
    context = AssistantContextSerializer(required=False, allow_null=True)


AssistantResponseSerializer = inline_serializer(
    "AssistantResponse",
    {
        "conversation": serializers.CharField(),
        "topic": serializers.ChoiceField(choices=[topic.value for topic in Topic]),
        "reply": serializers.CharField(),
        "facts": serializers.ListField(child=serializers.CharField()),
        "asks_for": serializers.ListField(child=serializers.CharField()),
        "ticket": serializers.IntegerField(allow_null=True),
    },
)


class AssistantAnonThrottle(AnonRateThrottle):
    # Anonymous guests: a chat, not a way to probe every station id.
    scope = "support_assistant"
    rate = "30/min"


class AssistantUserThrottle(UserRateThrottle):
    scope = "support_assistant_user"
    rate = "120/min"


class AssistantView(APIView):
    """Ask the support assistant; anonymous callers see what a guest at that charger may see."""

    permission_classes = [AllowAny]
    throttle_classes = [AssistantAnonThrottle, AssistantUserThrottle]

    @extend_schema(request=AssistantRequestSerializer, responses={200: AssistantResponseSerializer})
    def post(self, request: Request) -> Response:
        serializer = AssistantRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = serializer.validated_data
        context = data.get("context") or {}
        user = request.user if request.user.is_authenticated else None
        answer = assistant_answer(
            message=data["message"],
            conversation_key=data.get("conversation") or None,
            station_id=context.get("station_id") or "",
            session_id=context.get("session_id"),
            email=context.get("email") or "",
            user=user,
            client_ip=request.META.get("REMOTE_ADDR") or None,
        )
        return Response(answer.as_dict())
