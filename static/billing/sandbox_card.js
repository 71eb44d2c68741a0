/* The sandbox's test-card element, shared by the guest payment step and the driver's saved
 * cards. It reads the card fields and turns one of Stripe's documented test card numbers
 * (docs.stripe.com/testing) into Stripe's test PaymentMethod id; only that id is ever sent, so
 * no card number reaches our server, as with Stripe's Payment Element.
 * SandboxCard.read() returns {method: "pm_…"} or {error: "words for the person"}. */
(function () {
  "use strict";
  var TEST_CARDS = {
    "4242424242424242": "pm_card_visa",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
    "4000002760003184": "pm_card_authenticationRequired"
  };
  function luhn(digits) {
    var sum = 0;
    for (var i = 0; i < digits.length; i++) {
      var n = +digits[digits.length - 1 - i];
      if (i % 2 === 1) { n *= 2; if (n > 9) n -= 9; }
      sum += n;
    }
    return digits.length >= 12 && sum % 10 === 0;
  }
  function read() {
    var digits = document.getElementById("sbx-card").value.replace(/\D/g, "");
    var expiry = document.getElementById("sbx-exp").value.trim();
    var cvc = document.getElementById("sbx-cvc").value.trim();
    if (!luhn(digits)) return { error: "Check the card number: it should be 12–19 digits, as printed on the card." };
    var exp = parseExpiry(expiry);
    if (!exp) return { error: "Enter the expiry date as MM/YY, for example 12/34." };
    var now = new Date();
    if (exp.year < now.getFullYear() || (exp.year === now.getFullYear() && exp.month < now.getMonth() + 1)) {
      return { error: "This card has expired: check the expiry date." };
    }
    if (!/^\d{3,4}$/.test(cvc)) return { error: "Enter the 3 or 4 digit security code (CVC)." };
    var method = TEST_CARDS[digits];
    if (!method) return { error: "This is the sandbox: only Stripe's test cards work (for example 4242 4242 4242 4242)." };
    return { method: method, exp_month: exp.month, exp_year: exp.year };
  }
  // The expiry as people and card fields write it: "12/34", "12 / 34" (the way card fields format
  // it), "1234", "12-34" or "12/2034". Returns {month, year} or null.
  function parseExpiry(text) {
    var m = /^(\d{1,2})\s*[\/\-.]?\s*(\d{2}|\d{4})$/.exec(text.replace(/\s+/g, " "));
    if (!m) return null;
    var month = +m[1], year = +m[2];
    if (month < 1 || month > 12) return null;
    if (m[2].length === 2) year += 2000;
    return { month: month, year: year };
  }
  window.SandboxCard = { read: read, parseExpiry: parseExpiry };
})();
