from django import template

from guest.formatting import money as format_money

register = template.Library()


@register.filter
def money(value, currency: str = "") -> str:
    """Render an amount in its currency's decimals (`{{ x|money:"JPY" }}` 500, EUR 1.00), never
    1.0000; without a currency, as 1.00 / 0.345."""
    return format_money(value, currency)
