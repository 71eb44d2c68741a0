from django import template

from guest.formatting import money as format_money

register = template.Library()


@register.filter
def money(value) -> str:
    """Render a Decimal amount as 1.00 / 0.345 (never 1.0000)."""
    return format_money(value)
