"""factory_boy factories, one per model. Use .build() for pure logic, .create() with a db."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from authorization.models import MobilityServiceProvider, Token, TokenGroup
from backoffice.models import Membership, Organization, Property
from chargers.models import Charger


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("secret-pass-123")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Host {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = "owner"


class PropertyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Property

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Property {n}")
    address = "1 Main Street"
    timezone = "Europe/Amsterdam"
    currency = "EUR"


class ChargerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Charger
        skip_postgeneration_save = True

    station_id = factory.Sequence(lambda n: f"CP-{n:04d}")
    property = factory.SubFactory(PropertyFactory)
    access_mode = "public"
    ownership = "network"
    license_valid_until = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=365))
    # Chargers default to security profile 1 (a password). Tests about sessions, billing or
    # guests connect without one, so factory chargers are at profile 0 unless a test says
    # otherwise; tests/chargers/test_security_*.py and tests/e2e/test_tls_profiles.py cover
    # profiles 1-3 (ChargerFactory(security_profile=1, ocpp_password=...)).
    security_profile = 0

    @factory.post_generation
    def ocpp_password(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook
        if extracted:
            obj.set_ocpp_password(extracted)
            if create:
                obj.save(update_fields=["ocpp_password_hash", "ocpp_password_set_at"])


class MspFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MobilityServiceProvider

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"MSP {n}")
    country_code = "NL"
    party_id = factory.Sequence(lambda n: f"{n % 1000:03d}")


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    uid = factory.Sequence(lambda n: f"04AA{n:06X}")
    organization = factory.SubFactory(OrganizationFactory)


class TokenGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TokenGroup

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Group {n}")
