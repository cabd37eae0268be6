/** A movie as the API returns it. */
export interface Movie {
  id: number;
  title: string;
  description: string;
}

export interface NewMovie {
  title: string;
  description: string;
}

export type MoviePatch = Partial<NewMovie>;
