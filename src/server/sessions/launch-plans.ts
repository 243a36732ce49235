import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { EVENTS_FILE, type DataDir } from '../data-dir.js';
import type { DatasetPart, Mount } from '../executor/executor.js';
import type { AccountStore } from '../store/accounts.js';
import type { DatasetStore } from '../store/datasets.js';
import type { SessionRow } from '../store/sessions.js';
import { parseSessionName } from '../../protocol/session-name.js';

/** Where the nsml runtime's folders appear inside the sandbox. */
export const SANDBOX_CHECKPOINTS = '/khd/checkpoints';
/** The team's checkpoints, read-only, as USER/DATASET/N/NAME: what nsml.load(session=) reads. */
export const SANDBOX_TEAM_CHECKPOINTS = '/khd/team-checkpoints';
export const SANDBOX_STATE = '/khd/state';

/** What a session sees besides its code: dataset parts, runtime folders, extra environment. */
export interface LaunchPlan {
  datasetParts: DatasetPart[];
  mounts: Mount[];
  env: Record<string, string>;
}

export interface LaunchPlansDeps {
  datasets: DatasetStore;
  accounts: AccountStore;
  dataDir: DataDir;
  /** Whether sessions run in the sandbox (unsandboxed, they see the server's own folders). */
  sandboxed: boolean;
}

/** What each kind of session mounts, its folders made; the submit service plans submits with the same parts. */
export class LaunchPlans {
  constructor(private readonly d: LaunchPlansDeps) {}

  /** A training session: its dataset's train/, its checkpoints (writable), the team's, its events. */
  async training(s: SessionRow, checkpointDir: string): Promise<LaunchPlan> {
    const dataset = s.datasetId === null ? undefined : this.d.datasets.byId(s.datasetId);
    await mkdir(checkpointDir, { recursive: true });
    await mkdir(this.d.dataDir.state(s.id), { recursive: true });
    const team = await this.teamCheckpoints(s);
    return {
      datasetParts: dataset ? [{ name: 'train', host: join(this.d.dataDir.datasetPublic(dataset.name), 'train') }] : [],
      mounts: [{ env: 'KHD_CHECKPOINT_DIR', host: checkpointDir, inside: SANDBOX_CHECKPOINTS, writable: true }, ...team.mounts, this.stateMount(s.id)],
      env: { ...team.env, ...this.forkEnv(s, team.env.KHD_TEAM_CHECKPOINTS!) },
    };
  }

  /** A fork's checkpoint to continue from, where the team's checkpoints appear to it (nsml.paused loads it). */
  private forkEnv(s: SessionRow, teamRoot: string): Record<string, string> {
    if (!s.forkOf) return {};
    const source = parseSessionName(s.forkOf.session);
    return { KHD_FORK_CHECKPOINT: join(teamRoot, source.user, source.dataset, String(source.number), s.forkOf.checkpoint) };
  }

  /**
   * Every checkpoint of the session's team, read-only (NSML gave each team one account, so
   * `nsml.load(session=…)` reaches a teammate's): one mount per member, and nothing of other teams.
   */
  async teamCheckpoints(s: SessionRow): Promise<Pick<LaunchPlan, 'mounts' | 'env'>> {
    const members = this.d.accounts.teamMembers(s.teamId);
    const mounts: Mount[] = [];
    for (const member of members) {
      const host = this.d.dataDir.userCheckpoints(member);
      await mkdir(host, { recursive: true });
      mounts.push({ host, inside: `${SANDBOX_TEAM_CHECKPOINTS}/${member}`, writable: false });
    }
    // Unsandboxed, the code sees the server's own folder, where every user's checkpoints are.
    const root = this.d.sandboxed ? SANDBOX_TEAM_CHECKPOINTS : this.d.dataDir.checkpointsRoot;
    return { mounts, env: { KHD_TEAM_CHECKPOINTS: root } };
  }

  /** The runtime's events file, in a folder of its own the session may write. */
  stateMount(sessionId: number): Mount {
    return { env: 'KHD_EVENTS_FILE', host: this.d.dataDir.state(sessionId), inside: SANDBOX_STATE, writable: true, file: EVENTS_FILE };
  }
}
