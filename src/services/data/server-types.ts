/** The data side's names for the servers' extension points (src/services/servers/types.ts). */
export type {ServerPlugin as ApiPlugin, StreamClient, StreamHub} from '../servers/types.js'
