import {resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {installation} from '../../cli/installation.js'
import {composeFile, dockerfile} from '../../services/deploy/docker.js'
import {dockerOptions} from '../../services/deploy/from-config.js'
import {writeGenerated} from '../../services/deploy/write-files.js'

export interface SetupDockerResult {
  files: {path: string; text: string}[]
  written: boolean
}

export default class SetupDocker extends MfcCommand {
  static override summary = 'Write a Dockerfile and compose.yaml that run mfc serve in a container.'

  static override description = `The guide's Docker deployment for mfc: a two-stage node:20 image (non-root, health check on
/health with node instead of curl), and a compose file with the configured ports, the config
directory as a bind mount (<output>/config -> /etc/mfc) and the state (certificates, ACME
account, history) in a named volume. The image is built from this mfc checkout.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    {description: 'Write into ./deploy and start', command: '<%= config.bin %> <%= command.id %> --output deploy && docker compose -f deploy/compose.yaml up -d'},
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'Print both files to stdout; write nothing.'}),
    output: Flags.string({char: 'o', description: 'Directory to write Dockerfile and compose.yaml into.', default: '.'}),
  }

  async run(): Promise<SetupDockerResult> {
    const {flags} = await this.parse(SetupDocker)
    const config = this.loadConfig(flags.config)
    const dir = resolve(flags.output)
    const options = dockerOptions(config, installation(this.config.root), dir)
    const files = [{path: options.dockerfilePath, text: dockerfile(options)}, {path: resolve(dir, 'compose.yaml'), text: composeFile(options)}]
    if (flags['dry-run']) {
      if (!this.jsonEnabled()) for (const file of files) process.stdout.write(`# ${file.path}\n${file.text}\n`)
      return {files, written: false}
    }

    await writeGenerated(files.map((f) => ({...f, mode: 0o644})))
    this.say(`Wrote ${files.map((f) => f.path).join(' and ')}.\nNext: docker compose -f ${files[1].path} up -d --build`)
    return {files, written: true}
  }
}
