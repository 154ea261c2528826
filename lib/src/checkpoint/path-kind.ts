/**
 * What a checkpoint path is (file, folder, missing, symlink loop, unreadable), so that messages
 * say what is wrong: `fs.existsSync` answers false for a symlink loop too, which then reads as
 * "not found", and opening a folder as a file fails later with a raw EISDIR.
 */
import * as fs from "fs";

/** What a path is, without following it blindly: a symlink loop or a permission error is not "missing". */
export type PathKind = "file" | "directory" | "missing" | "symlink-loop" | "other" | `unreadable (${string})`;

export function pathKind(p: string): PathKind {
  try {
    const st = fs.statSync(p);
    return st.isFile() ? "file" : st.isDirectory() ? "directory" : "other";
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return "missing";
    if (code === "ELOOP") return "symlink-loop";
    return `unreadable (${code ?? (e as Error).message})`;
  }
}

/** "does not exist", "is a symlink loop", ... for messages. */
export function kindText(kind: PathKind): string {
  switch (kind) {
    case "missing":
      return "does not exist";
    case "symlink-loop":
      return "is a symbolic link loop (ELOOP)";
    case "directory":
      return "is a directory";
    case "file":
      return "is a file, not a directory";
    case "other":
      return "is not a regular file or directory";
    default:
      return `cannot be read: ${kind}`;
  }
}
