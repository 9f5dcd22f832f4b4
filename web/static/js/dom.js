// Small DOM helpers shared by the meeting-room modules.

export function byId(id) {
  return document.getElementById(id);
}

/** A small element builder: el("li", {className: "x", text: "y"}, [children]). */
export function el(tag, props, children) {
  const node = document.createElement(tag);
  const options = props || {};
  Object.keys(options).forEach(function (key) {
    const value = options[key];
    if (value === undefined || value === null) {
      return;
    }
    if (key === "text") {
      node.textContent = value;
    } else if (key === "className") {
      node.className = value;
    } else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "lang") {
      node.setAttribute(key, value);
    } else {
      node[key] = value;
    }
  });
  (children || []).forEach(function (child) {
    if (child) {
      node.appendChild(child);
    }
  });
  return node;
}

export function initials(name) {
  const words = String(name || "?").replace(/\(.*\)/, "").trim().split(/\s+/);
  return words.slice(0, 2).map(function (w) { return w.charAt(0).toUpperCase(); }).join("") || "?";
}

export function setPressed(button, pressed) {
  if (button) {
    button.setAttribute("aria-pressed", pressed ? "true" : "false");
  }
}
