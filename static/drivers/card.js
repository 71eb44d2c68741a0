/* Save a card for later (SetupIntent). The card never reaches our server:
 * - Stripe: the Payment Element collects it and stripe.confirmSetup saves it at Stripe, which
 *   sends the browser to our return_url with ?setup_intent=…
 * - Sandbox: this page turns a Stripe test card number into Stripe's test PaymentMethod id and
 *   sends only that id to the sandbox's stand-in for api.stripe.com. */
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  if (!form) return;
  var errorBox = document.getElementById("card-error");
  var button = document.getElementById("card-button");
  var data = form.dataset;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    button.disabled = false;
    button.textContent = "Save card";
    errorBox.setAttribute("tabindex", "-1");
    errorBox.focus();
  }
  function busy() {
    errorBox.hidden = true;
    button.disabled = true;
    button.textContent = "Saving…";
  }

  if (data.mode === "stripe") {
    var stripe = window.Stripe(data.publishableKey);
    var elements = stripe.elements({ clientSecret: data.clientSecret });
    elements.create("payment").mount("#payment-element");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      busy();
      stripe.confirmSetup({ elements: elements, confirmParams: { return_url: data.returnUrl } })
        .then(function (result) { if (result.error) showError(result.error.message); });
    });
    return;
  }

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
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var digits = document.getElementById("sbx-card").value.replace(/\D/g, "");
    var expiry = document.getElementById("sbx-exp").value.trim();
    var cvc = document.getElementById("sbx-cvc").value.trim();
    if (!luhn(digits)) return showError("Check the card number: it should be 12–19 digits, as printed on the card.");
    if (!/^(0[1-9]|1[0-2])\/\d\d$/.test(expiry)) return showError("Enter the expiry date as MM/YY.");
    if (!/^\d{3,4}$/.test(cvc)) return showError("Enter the 3 or 4 digit security code (CVC).");
    var method = TEST_CARDS[digits];
    if (!method) return showError("This is the sandbox: only Stripe's test cards work (for example 4242 4242 4242 4242).");
    busy();
    var body = new URLSearchParams({ client_secret: data.clientSecret, payment_method: method });
    fetch(data.confirmUrl, { method: "POST", body: body, credentials: "omit" })
      .then(function (response) { return response.json(); })
      .then(function (intent) {
        if (intent.error) return showError(intent.error.message);
        var sep = data.returnUrl.indexOf("?") === -1 ? "?" : "&";
        window.location.assign(data.returnUrl + sep + "setup_intent=" + encodeURIComponent(intent.id));
      })
      .catch(function () { showError("The card could not be sent. Check your connection and try again."); });
  });
})();
