"""prift.recipes: YAML recipes and the pipeline that chains the stages."""
