'use strict';
// Shared by the upload page and the ops view.

const $ = (selector) => document.querySelector(selector);

// bytes as a person reads them (decimal units, like the CLI)
function human(bytes) {
  if (bytes === null || bytes === undefined) return '?';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}
