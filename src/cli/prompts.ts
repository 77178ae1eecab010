/** The only importer of @inquirer/prompts; loaded only when a command really asks. */
export async function askText(message: string, options: {default?: string; validate?: (value: string) => true | string} = {}): Promise<string> {
  const {input} = await import('@inquirer/prompts')
  return input({message, default: options.default, validate: options.validate})
}

export async function askConfirm(message: string, defaultValue = false): Promise<boolean> {
  const {confirm} = await import('@inquirer/prompts')
  return confirm({message, default: defaultValue})
}

export async function askChoice<T extends string>(message: string, choices: {name: string; value: T; description?: string}[], defaultValue?: T): Promise<T> {
  const {select} = await import('@inquirer/prompts')
  return select({message, choices, default: defaultValue})
}

/** A hidden answer (passwords); never echoed. */
export async function askSecret(message: string): Promise<string> {
  const {password} = await import('@inquirer/prompts')
  return password({message, mask: true})
}
