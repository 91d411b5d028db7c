// Streams answers into the chat page. Without this script the forms post normally and the
// page reloads with the finished answer.
"use strict";

(function () {
  const messages = document.getElementById("messages");
  const askForm = document.getElementById("ask");
  if (!messages || !askForm) return;

  function csrf(form) {
    return form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  function fromHtml(html) {
    const holder = document.createElement("div");
    holder.innerHTML = html.trim();
    return holder.firstElementChild;
  }

  function revealCopyButtons(root) {
    root.querySelectorAll("button.copy").forEach((button) => { button.hidden = false; });
  }

  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) kind = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        yield { kind, data: data ? JSON.parse(data) : {} };
      }
    }
  }

  async function stream(form, body) {
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    const intro = messages.querySelector(".intro");
    if (intro) intro.remove();
    let bubble = null;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { Accept: "text/event-stream", "X-CSRFToken": csrf(form) },
        credentials: "same-origin",
      });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        const errors = Object.values(problem.errors || {}).flat().map((e) => e.message || e);
        showError(errors.join(" ") || "The question could not be asked (" + response.status + ").");
        return;
      }
      for await (const event of events(response)) {
        if (event.kind === "question") {
          const question = fromHtml(event.data.html);
          // A regenerated answer's question is on the page already.
          if (!document.getElementById(question.id)) messages.appendChild(question);
          const field = askForm.querySelector("input[name=conversation]");
          if (field && !field.value) {
            field.value = event.data.conversation.split("/").filter(Boolean).pop();
            history.replaceState(null, "", event.data.conversation);
            listConversation(event.data.conversation, event.data.title);
          }
          bubble = fromHtml('<article class="message answer streaming" aria-live="polite"><div class="text"></div></article>');
          bubble.querySelector(".text").textContent = "Searching your documents\u2026";
          bubble.dataset.started = "";
          messages.appendChild(bubble);
          if (form === askForm) askForm.querySelector("textarea[name=question]").value = "";
        } else if (event.kind === "delta" && bubble) {
          const text = bubble.querySelector(".text");
          if (bubble.dataset.started === "") { text.textContent = ""; bubble.dataset.started = "1"; }
          text.textContent += event.data.text;
        } else if (event.kind === "reset" && bubble) {
          bubble.querySelector(".text").textContent = "The language model failed; quoting the passages instead\u2026";
          bubble.dataset.started = "";
        } else if (event.kind === "done" && bubble) {
          const answer = fromHtml(event.data.html);
          bubble.replaceWith(answer);
          revealCopyButtons(answer);
          answer.scrollIntoView({ block: "nearest" });
          bubble = null;
        } else if (event.kind === "error") {
          if (bubble) bubble.querySelector(".text").textContent = event.data.message;
          else showError(event.data.message);
        }
      }
    } catch (error) {
      const message = "The connection was lost before the answer was complete. Reload the page to see it.";
      if (bubble) bubble.querySelector(".text").textContent = message;
      else showError(message);
    } finally {
      if (button) button.disabled = false;
    }
  }

  function listConversation(url, title) {
    const list = document.querySelector(".conversations ul");
    if (!list) return;
    list.querySelectorAll(".muted").forEach((item) => item.remove());
    list.querySelectorAll(".current").forEach((item) => item.classList.remove("current"));
    const item = document.createElement("li");
    item.className = "current";
    const link = document.createElement("a");
    link.href = url;
    link.textContent = title;
    item.appendChild(link);
    list.prepend(item);
  }

  function showError(text) {
    let box = askForm.querySelector(".error.live");
    if (!box) {
      box = document.createElement("p");
      box.className = "error live";
      askForm.prepend(box);
    }
    box.textContent = text;
  }

  askForm.addEventListener("submit", (event) => {
    event.preventDefault();
    stream(askForm, new FormData(askForm));
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.classList.contains("regenerate")) {
      event.preventDefault();
      await stream(form, new FormData(form));
    } else if (form.classList.contains("feedback")) {
      event.preventDefault();
      const body = new FormData(form);
      if (event.submitter) body.set(event.submitter.name, event.submitter.value);
      const response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { Accept: "application/json", "X-CSRFToken": csrf(form) },
        credentials: "same-origin",
      });
      let note = form.querySelector(".voted");
      if (!note) {
        note = document.createElement("span");
        note.className = "muted small voted";
        form.appendChild(note);
      }
      note.textContent = response.ok ? "Thanks for your feedback." : "Feedback could not be saved.";
    }
  });

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const text = button.closest("article").querySelector(".text").innerText;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch (error) {
      button.textContent = "Copy failed";
    }
  });

  revealCopyButtons(document);
})();
