// The case editor: a plain textarea (no wrapping, so a line of the case is a line on screen), its
// line numbers, and the located error of a refused case shown beside the place it names: the
// server's line and column (1-based, counted in characters as Python counts them) are turned into
// a position in the textarea, the text there is selected, its line marked in the gutter, and the
// error's message set just below it, pointing at the column.

import { el } from "./dom.js";

export class Editor {
  constructor(textarea, gutter, marker) {
    this.textarea = textarea;
    this.gutter = gutter;
    this.marker = marker;
    this.lines = 0;
    this.error = null;          // {line, column} of the error shown
    this.canvas = document.createElement("canvas");
    textarea.addEventListener("input", () => { this.clearError(); this.renumber(); });
    textarea.addEventListener("scroll", () => { gutter.scrollTop = textarea.scrollTop; this.place(); });
    window.addEventListener("resize", () => this.place());
    this.renumber();
  }

  get text() { return this.textarea.value; }

  set text(value) {
    this.textarea.value = value;
    this.textarea.scrollTop = 0;
    this.textarea.scrollLeft = 0;
    this.clearError();
    this.renumber();
  }

  renumber() {
    const count = this.textarea.value.split("\n").length;
    if (count === this.lines) return;
    this.lines = count;
    this.gutter.replaceChildren(...Array.from({ length: count }, (_, i) => el("div", { text: i + 1 })));
    this.gutter.scrollTop = this.textarea.scrollTop;
  }

  // Show `message` beside line `line`, column `column` (column 1 when the error names none).
  showError(line, column, message) {
    const rows = this.textarea.value.split("\n");
    line = Math.min(Math.max(1, line), rows.length);
    const row = rows[line - 1];
    const before = Array.from(row).slice(0, Math.max(0, (column || 1) - 1)).join("");  // code points, as Python
    let start = 0;
    for (let i = 0; i < line - 1; i++) start += rows[i].length + 1;
    start += before.length;
    const token = /^[^\s,:{}\[\]]*/.exec(row.slice(before.length))[0];
    const end = start + Math.max(token.length, Math.min(1, row.length - before.length));
    this.error = { line, prefix: before };
    this.gutter.querySelectorAll(".bad").forEach((n) => n.classList.remove("bad"));
    const number = this.gutter.children[line - 1];
    if (number) number.classList.add("bad");
    this.marker.replaceChildren(el("span", { class: "arrow", text: "▲" }), el("span", { text: message }));
    this.marker.hidden = false;
    const lineHeight = this.lineHeight();
    const top = (line - 1) * lineHeight;
    const area = this.textarea;
    if (top < area.scrollTop || top + 3 * lineHeight > area.scrollTop + area.clientHeight) {
      area.scrollTop = Math.max(0, top - area.clientHeight / 3);
    }
    const x = this.measure(before);
    if (x < area.scrollLeft || x > area.scrollLeft + area.clientWidth - 80) {
      area.scrollLeft = Math.max(0, x - area.clientWidth / 3);
    }
    area.focus({ preventScroll: true });
    area.setSelectionRange(start, end);
    this.place();
  }

  // The width of `text` in the textarea's own font (wide characters count as wide; tabs as spaces).
  measure(text) {
    const style = getComputedStyle(this.textarea);
    const context = this.canvas.getContext("2d");
    context.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    return context.measureText(text.replace(/\t/g, " ".repeat(parseInt(style.tabSize, 10) || 8))).width;
  }

  clearError() {
    this.error = null;
    this.marker.hidden = true;
    this.gutter.querySelectorAll(".bad").forEach((n) => n.classList.remove("bad"));
  }

  lineHeight() {
    return parseFloat(getComputedStyle(this.textarea).lineHeight) || 20;
  }

  // The marker goes under the error's line, its arrow under the column (measured in the
  // textarea's own font, so wide characters before the column count as wide).
  place() {
    if (!this.error) return;
    const area = this.textarea;
    const style = getComputedStyle(area);
    const x = parseFloat(style.paddingLeft) + this.measure(this.error.prefix) - area.scrollLeft;
    const y = parseFloat(style.paddingTop) + this.error.line * this.lineHeight() - area.scrollTop;
    const visible = y > 0 && y < area.clientHeight;
    this.marker.style.visibility = visible ? "visible" : "hidden";
    this.marker.style.top = `${area.offsetTop + y + 2}px`;
    const width = this.marker.offsetWidth;
    const left = Math.max(0, Math.min(x - 10, area.clientWidth - width));
    this.marker.style.left = `${area.offsetLeft + left}px`;
    const arrow = this.marker.firstChild;        // its middle under the column's left edge
    const inset = parseFloat(getComputedStyle(this.marker).paddingLeft) + arrow.offsetWidth / 2;
    arrow.style.marginLeft = `${Math.max(0, x - left - inset)}px`;
  }
}
