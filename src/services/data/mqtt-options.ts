import {readFile, stat} from 'node:fs/promises'
import {hostname} from 'node:os'

import type {MfcConfig} from '../../lib/config.js'
import {ConfigError, errnoCode} from '../../lib/errors.js'
import type {DataSettings} from './data-settings.js'
import type {MqttOptions} from './mqtt-subscriber.js'

type FileKey = 'mqtt_password_file' | 'mqtt_ca_file' | 'mqtt_cert_file' | 'mqtt_key_file'

/**
 * The subscription from the data keys: the password from `mqtt_password_file`, else
 * MFC_MQTT_PASSWORD; the CA and the optional client certificate from their files. A file that
 * holds a secret (the password, the client key) and that its group or others may read is refused
 * with the chmod to run, as the DNS credentials are. Errors name the file and the key, never the
 * secret. Undefined when `mqtt_url` is not set.
 */
export async function mqttOptions(settings: DataSettings, config: Pick<MfcConfig, 'file' | 'secrets'>): Promise<MqttOptions | undefined> {
  if (!settings.mqtt_url) return undefined
  const where = config.file.path
  const read = (key: FileKey, secret = false) => {
    const file = settings[key]
    return file ? readSetting(key, file, where, secret) : Promise.resolve(null)
  }

  if ((settings.mqtt_cert_file === null) !== (settings.mqtt_key_file === null)) {
    const [set, unset] = settings.mqtt_cert_file === null ? ['mqtt_key_file', 'mqtt_cert_file'] : ['mqtt_cert_file', 'mqtt_key_file']
    throw new ConfigError(`"${set}" is set in ${where} but "${unset}" is not: a client certificate needs both.`, {
      code: 'MFC_CONFIG_VALUE', suggestions: [`Set "${unset}" in ${where}, or remove "${set}".`],
    })
  }

  const passwordFile = await read('mqtt_password_file', true)
  return {
    url: settings.mqtt_url, topic: settings.mqtt_topic, username: settings.mqtt_username,
    password: passwordFile === null ? config.secrets.mqttPassword ?? null : passwordFile.replace(/\r?\n$/, ''),
    ca: await read('mqtt_ca_file'),
    cert: await read('mqtt_cert_file'),
    key: await read('mqtt_key_file', true),
    clientId: settings.mqtt_client_id ?? `mfc-${hostname()}`.replaceAll(/[^\w.-]/g, '-').slice(0, 64),
  }
}

async function readSetting(key: FileKey, file: string, where: string, secret: boolean): Promise<string> {
  try {
    const mode = (await stat(file)).mode & 0o777
    if (secret && (mode & 0o077) !== 0) {
      throw new ConfigError(`${file} ("${key}" in ${where}) holds a secret but is readable by ${(mode & 0o007) === 0 ? 'its group' : 'others'} (mode ${mode.toString(8).padStart(3, '0')}).`, {
        code: 'MFC_MQTT_CREDENTIALS', suggestions: [`Run: chmod 600 ${file}`],
      })
    }

    return await readFile(file, 'utf8')
  } catch (error) {
    if (error instanceof ConfigError) throw error
    throw new ConfigError(`Cannot read ${file} ("${key}" in ${where}): ${errnoCode(error) ?? (error as Error).message}.`, {
      code: 'MFC_MQTT_CREDENTIALS', cause: error, suggestions: [`Create ${file}${secret ? ' (mode 0600, readable by the user running mfc)' : ''} or fix "${key}" in ${where}.`],
    })
  }
}
