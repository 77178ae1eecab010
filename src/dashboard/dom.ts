/** An inline SVG icon from the page's sprite (no emoji: browsers without an emoji font show boxes). */
export function icon(name: string): SVGSVGElement {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('class', 'icon')
  svg.setAttribute('aria-hidden', 'true')
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use')
  use.setAttribute('href', `#i-${name}`)
  svg.append(use)
  return svg
}

export function withIcon(el: Element, name: string, label: string): void {
  el.replaceChildren(icon(name), document.createTextNode(` ${label}`))
}

/** A table cell holding `value` as text. */
export function cell(value: string, className = ''): HTMLTableCellElement {
  const td = document.createElement('td')
  td.textContent = value
  if (className) td.className = className
  return td
}

export function inputCell(type: 'number' | 'checkbox', name: string, value: number | boolean | null): HTMLTableCellElement {
  const td = document.createElement('td')
  const input = document.createElement('input')
  input.type = type
  input.name = name
  if (type === 'checkbox') input.checked = value === true
  else {
    input.step = 'any'
    input.value = value === null || value === false || value === true ? '' : String(value)
  }

  td.append(input)
  return td
}
