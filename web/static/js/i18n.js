// Khmer and English for the page scripts.
//
// The catalog is the server's /i18n/<lang>.json (the messages of web/static/js/**.js, extracted by
// Babel with the keyword _). The language is the page's <html lang>. Placeholders are %(name)s.

const lang = document.documentElement.lang || "en";
let catalog = {};

export const language = lang;

export async function loadCatalog() {
  if (lang === "en") {
    return;
  }
  try {
    const response = await fetch("/i18n/" + encodeURIComponent(lang) + ".json", { credentials: "same-origin" });
    if (response.ok) {
      catalog = await response.json();
    }
  } catch (error) {
    // Untranslated strings are shown in English rather than not at all.
    console.warn("translations unavailable", error);
  }
}

/** The translation of a message (the message itself when there is none). */
export function _(message) {
  const translated = catalog[message];
  return typeof translated === "string" && translated ? translated : message;
}

/** Fill %(name)s placeholders: format(_("Hello %(name)s"), {name: "Dara"}). */
export function format(message, values) {
  return message.replace(/%\((\w+)\)s/g, function (whole, name) {
    return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
  });
}

/** A number in the page's language (Khmer digits for Khmer). */
export function number(value, digits) {
  const options = { maximumFractionDigits: digits === undefined ? 0 : digits };
  try {
    return new Intl.NumberFormat(lang === "km" ? "km-KH" : "en-GB", options).format(value);
  } catch (error) {
    return String(value);
  }
}
