// The support assistant panel: posts to the assistant API and shows its reply, live facts,
// what it still needs and the ticket it opened. The conversation key lives in sessionStorage so
// the chat survives moving between guest pages in the same tab.
(function () {
  "use strict";
  const root = document.querySelector("[data-assistant]");
  if (!root) return;
  const panel = root.querySelector(".sa-panel");
  const toggle = root.querySelector("[data-assistant-toggle]");
  const log = root.querySelector(".sa-log");
  const form = root.querySelector("[data-assistant-form]");
  const input = form.querySelector("textarea");
  const email = form.querySelector("input[type=email]");
  const send = form.querySelector("button[type=submit]");
  const KEY = "support-assistant-conversation";
  // The floating button must not hide the page's last lines or the field being typed in
  // (assistant.css pads the page; the button steps aside while a page field has the focus).
  document.body.classList.add("has-sa");
  document.addEventListener("focusin", (event) => {
    const field = event.target.closest && event.target.closest("input, textarea, select");
    root.classList.toggle("sa-typing", Boolean(field) && !root.contains(field));
  });
  document.addEventListener("focusout", () => root.classList.remove("sa-typing"));

  function open(message) {
    panel.hidden = false;
    toggle.hidden = true;
    toggle.setAttribute("aria-expanded", "true");
    if (message) input.value = message;
    input.focus();
  }
  function close() {
    panel.hidden = true;
    toggle.hidden = false;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  }
  toggle.addEventListener("click", () => open());
  root.querySelector("[data-assistant-close]").addEventListener("click", close);
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });

  // An error prompt (seed 000's prompts on the guest page) gets its own way into the assistant,
  // with the prompt's title as the first message.
  document.querySelectorAll("[data-prompt]").forEach((prompt) => {
    const title = (prompt.querySelector("h1") || prompt).textContent.trim();
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sa-ask";
    button.dataset.assistantOpen = "";
    button.textContent = "Ask the assistant about this";
    button.addEventListener("click", () => open("I see “" + title + "”"));
    prompt.appendChild(button);
  });

  function add(role, build) {
    const item = document.createElement("div");
    item.className = role;
    build(item);
    log.appendChild(item);
    // An answer is read from its start: the advice first, then the facts below it.
    log.scrollTop = role === "bot" ? item.offsetTop : log.scrollHeight;
    return item;
  }
  function list(item, heading, values) {
    if (!values || !values.length) return;
    const p = document.createElement("div");
    p.textContent = heading;
    const ul = document.createElement("ul");
    values.forEach((v) => { const li = document.createElement("li"); li.textContent = v; ul.appendChild(li); });
    item.append(p, ul);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    add("me", (li) => { li.textContent = message; });
    input.value = "";
    send.disabled = true;
    const body = {
      message: message,
      conversation: sessionStorage.getItem(KEY),
      context: { station_id: root.dataset.station || null, email: email.value.trim() || null },
    };
    try {
      const response = await fetch(root.dataset.endpoint, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
        body: JSON.stringify(body),
      });
      if (response.status === 429) throw new Error("Too many messages: please wait a minute.");
      // The server failed (its database busy, a fault): not the guest's message.
      if (response.status >= 500) {
        throw new Error("Sorry, I could not answer just now. Please send your message again in a moment.");
      }
      if (!response.ok) throw new Error("Sorry, I could not read that. Please try again.");
      const answer = await response.json();
      sessionStorage.setItem(KEY, answer.conversation);
      add("bot", (li) => {
        li.dataset.topic = answer.topic;
        const reply = document.createElement("div");
        reply.textContent = answer.reply;
        li.appendChild(reply);
        list(li, "What I see now:", answer.facts);
        if (answer.ticket) {
          const t = document.createElement("div");
          t.className = "sa-ticket";
          t.dataset.ticket = answer.ticket;
          t.textContent = "Ticket #" + (answer.ticket_reference || answer.ticket) + " is open.";
          li.appendChild(t);
        }
      });
    } catch (error) {
      // fetch() rejects with a TypeError when the request never reached us; its message is the
      // browser's ("Failed to fetch"), not for the guest. An unreadable answer: a SyntaxError.
      const words = error instanceof TypeError
        ? "Sorry, your message could not reach us. Check your connection and send it again."
        : error instanceof SyntaxError
          ? "Sorry, I could not answer just now. Please send your message again in a moment."
          : error.message || "Sorry, something went wrong. Please send your message again.";
      add("bot", (li) => { li.textContent = words; });
    } finally {
      send.disabled = false;
    }
  });
})();
