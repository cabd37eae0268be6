import type { z } from 'zod';

/** Turns zod's issues into one readable sentence: "title: is required; extra: unknown field". */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => `${key}: unknown field`).join('; ');
      }
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      return `${where}${issue.message}`;
    })
    .join('; ');
}
